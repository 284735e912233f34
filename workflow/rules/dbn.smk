# Deep belief nets: Hinton, Osindero & Teh 2006 (HOT06) and Hinton & Salakhutdinov 2006 (HS06).
#   updown:   dbn_greedy (labelled DBN, greedy CD-1) -> dbn_updown (up-down, then all 60,000)
#   backprop: dbn_pretrain (HS06 CD-1 stack)          -> dbn_finetune (backprop, softmax on top)
#   baseline: dbn_finetune from random weights
# Every training rule writes into data/runs/dbn/<variant>/seed<N>/ and resumes from its checkpoints.
# Ablations (config ablations.dbn) run the chain of the real variant their bases start from, with
# changed parameters, into data/runs/dbn/<name>/seed<N>/.
DBN = config["dbn"]
DBN_MNIST = {split: f"{PROCESSED}/mnist/{split}.pt" for split in ("train", "valid", "train_full", "test")}
dbn_code = lambda command: code(f"dlgm.commands.dbn:{command}")
DBN_VARIANTS = ["updown", "backprop", "baseline"]
DBN_FIGURES = [f"{FIGURES}/dbn/{name}.png" for name in ("samples", "filters", "misclassified", "curves")]
DBN_SEED0 = seeds_of("dbn")[0]  # the figures show the first seed

DBN_ABLATIONS = ablations_of("dbn")
dbn_params = lambda variant: ablation_params("dbn", variant, DBN_VARIANTS, DBN.__getitem__)
dbn_root = lambda variant: ablation_root("dbn", variant, DBN_VARIANTS)
check_ablations("dbn", DBN_VARIANTS, DBN.__getitem__)
RUN_PARAMS["dbn"] = lambda variant: dbn_params(variant) if variant in DBN_VARIANTS + list(DBN_ABLATIONS) else None


# the first stage an up-down or backprop run takes (an ablation of the up-down rates reuses its base's greedy net)
dbn_greedy_source = lambda variant: stage_source("dbn", variant, DBN_VARIANTS, DBN.__getitem__,
                                                 ("sizes", "top_size", "train_images", "greedy"))
dbn_pretrain_source = lambda variant: stage_source("dbn", variant, DBN_VARIANTS, DBN.__getitem__,
                                                   ("sizes", "train_images", "pretrain"))
dbn_family = lambda *roots: ablation_family("dbn", roots, DBN_VARIANTS)


rule dbn_greedy:
    input:
        **{k: DBN_MNIST[k] for k in ("train", "valid", "test")},
        code=dbn_code("cmd_greedy"),
    output:
        f"{run_dir('dbn', '{dbn_variant}')}/greedy.pt",
    wildcard_constraints:
        dbn_variant=dbn_family("updown"),
    log:
        train_log(run_dir("dbn", "{dbn_variant}"), "greedy")["log"],
    benchmark:
        train_log(run_dir("dbn", "{dbn_variant}"), "greedy")["benchmark"]
    params:
        cfg=lambda w: params(dbn_params(w.dbn_variant)),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(60, mem_mb=6000),
    shell:
        "python -m dlgm dbn greedy --params {params.cfg} --seed {wildcards.seed} --device {params.device}"
        " --threads {params.threads} --train {input.train} --valid {input.valid} --test {input.test}"
        " --out {output} > {log} 2>&1"


rule dbn_updown:
    input:
        greedy=stage_file(rules.dbn_greedy.output[0], "dbn_variant", dbn_greedy_source),
        **DBN_MNIST,
        code=dbn_code("cmd_updown"),
    output:
        model=f"{run_dir('dbn', '{dbn_variant}')}/model.pt",
        metrics=f"{run_dir('dbn', '{dbn_variant}')}/metrics.json",
    wildcard_constraints:
        dbn_variant=dbn_family("updown"),
    log:
        train_log(run_dir("dbn", "{dbn_variant}"), "updown")["log"],
    benchmark:
        train_log(run_dir("dbn", "{dbn_variant}"), "updown")["benchmark"]
    params:
        cfg=lambda w: params(dbn_params(w.dbn_variant)),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(600, mem_mb=6000),
    shell:
        "python -m dlgm dbn updown --params {params.cfg} --variant {wildcards.dbn_variant} --seed {wildcards.seed}"
        " --device {params.device}"
        " --threads {params.threads} --greedy {input.greedy} --train {input.train}"
        " --train-full {input.train_full} --valid {input.valid} --test {input.test}"
        " --model {output.model} --metrics {output.metrics} > {log} 2>&1"


rule dbn_pretrain:
    input:
        train=DBN_MNIST["train"],
        code=dbn_code("cmd_pretrain"),
    output:
        f"{run_dir('dbn', '{dbn_variant}')}/pretrained.pt",
    wildcard_constraints:
        dbn_variant=dbn_family("backprop"),
    log:
        train_log(run_dir("dbn", "{dbn_variant}"), "pretrain")["log"],
    benchmark:
        train_log(run_dir("dbn", "{dbn_variant}"), "pretrain")["benchmark"]
    params:
        cfg=lambda w: params(dbn_params(w.dbn_variant)),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(120, mem_mb=6000),
    shell:
        "python -m dlgm dbn pretrain --params {params.cfg} --seed {wildcards.seed} --device {params.device}"
        " --threads {params.threads} --train {input.train} --out {output} > {log} 2>&1"


# backprop (and its ablations) start from their HS06 stack; the baseline from random weights.
dbn_pretrained = lambda w: (
    {"pretrained": stage_file(rules.dbn_pretrain.output[0], "dbn_variant", dbn_pretrain_source)(w)}
    if dbn_root(w.dbn_variant) == "backprop" else {}
)


rule dbn_finetune:
    input:
        unpack(dbn_pretrained),
        **{k: DBN_MNIST[k] for k in ("train", "valid", "test")},
        code=dbn_code("cmd_finetune"),
    output:
        model=f"{run_dir('dbn', '{dbn_variant}')}/model.pt",
        metrics=f"{run_dir('dbn', '{dbn_variant}')}/metrics.json",
    wildcard_constraints:
        dbn_variant=dbn_family("backprop", "baseline"),
    log:
        train_log(run_dir("dbn", "{dbn_variant}"), "finetune")["log"],
    benchmark:
        train_log(run_dir("dbn", "{dbn_variant}"), "finetune")["benchmark"]
    params:
        cfg=lambda w: params(dbn_params(w.dbn_variant)),
        pretrained=lambda w, input: f"--pretrained {input.pretrained}" if "pretrained" in input.keys() else "",
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(240, mem_mb=6000),
    shell:
        "python -m dlgm dbn finetune --params {params.cfg} --variant {wildcards.dbn_variant} {params.pretrained}"
        " --seed {wildcards.seed} --device {params.device} --threads {params.threads} --train {input.train}"
        " --valid {input.valid} --test {input.test} --model {output.model} --metrics {output.metrics} > {log} 2>&1"


rule dbn_plot:
    input:
        updown=expand(rules.dbn_updown.output.model, dbn_variant="updown", seed=DBN_SEED0),
        pretrained=expand(rules.dbn_pretrain.output[0], dbn_variant="backprop", seed=DBN_SEED0),
        metrics=expand(f"{run_dir('dbn', '{variant}')}/metrics.json", variant=DBN_VARIANTS, seed=DBN_SEED0),
        test=DBN_MNIST["test"],
        code=dbn_code("cmd_plot"),
    output:
        **{name: report(f"{FIGURES}/dbn/{name}.png", category="dbn")
           for name in ("samples", "filters", "misclassified", "curves")},
        captions=[f"{FIGURES}/dbn/{name}.txt" for name in ("samples", "filters", "misclassified", "curves")],
    params:
        cfg=lambda w: params(DBN["updown"]),
        run_dirs=[run_dir("dbn", v).format(seed=DBN_SEED0) for v in DBN_VARIANTS],
        seed=DBN_SEED0,
    log:
        "reports/logs/dbn_plot.log",
    localrule: True
    shell:
        "python -m dlgm dbn plot --params {params.cfg} --seed {params.seed} --device cpu"
        " --updown-model {input.updown} --pretrained {input.pretrained} --test {input.test}"
        " --run-dirs {params.run_dirs}"
        " --samples {output.samples} --filters {output.filters} --misclassified {output.misclassified}"
        " --curves {output.curves} > {log} 2>&1"


register_report(
    "dbn",
    metrics=[f"{run_dir('dbn', v)}/metrics.json".format(seed=s) for v in DBN_VARIANTS for s in seeds_of("dbn", v)]
    + ablation_metrics("dbn"),
    figures=DBN_FIGURES,
)
