# Deep belief nets: Hinton, Osindero & Teh 2006 (HOT06) and Hinton & Salakhutdinov 2006 (HS06).
#   updown:   dbn_greedy (labelled DBN, greedy CD-1) -> dbn_updown (up-down, then all 60,000)
#   backprop: dbn_pretrain (HS06 CD-1 stack)          -> dbn_finetune (backprop, softmax on top)
#   baseline: dbn_finetune from random weights
# Every training rule writes into data/runs/dbn/<variant>/seed<N>/ and resumes from its checkpoints.
DBN = config["dbn"]
DBN_MNIST = {split: f"{PROCESSED}/mnist/{split}.pt" for split in ("train", "valid", "train_full", "test")}
dbn_code = lambda command: code(f"dlgm.commands.dbn:{command}")
DBN_VARIANTS = ["updown", "backprop", "baseline"]
DBN_FIGURES = [f"{FIGURES}/dbn/{name}.png" for name in ("samples", "filters", "misclassified", "curves")]
DBN_SEED0 = seeds_of("dbn")[0]  # the figures show the first seed

wildcard_constraints:
    dbn_variant="backprop|baseline",


rule dbn_greedy:
    input:
        **{k: DBN_MNIST[k] for k in ("train", "valid", "test")},
        code=dbn_code("cmd_greedy"),
    output:
        f"{run_dir('dbn', 'updown')}/greedy.pt",
    log:
        train_log(run_dir("dbn", "updown"), "greedy")["log"],
    benchmark:
        train_log(run_dir("dbn", "updown"), "greedy")["benchmark"]
    params:
        cfg=lambda w: params(DBN["updown"]),
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
        greedy=rules.dbn_greedy.output[0],
        **DBN_MNIST,
        code=dbn_code("cmd_updown"),
    output:
        model=f"{run_dir('dbn', 'updown')}/model.pt",
        metrics=f"{run_dir('dbn', 'updown')}/metrics.json",
    log:
        train_log(run_dir("dbn", "updown"), "updown")["log"],
    benchmark:
        train_log(run_dir("dbn", "updown"), "updown")["benchmark"]
    params:
        cfg=lambda w: params(DBN["updown"]),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(600, mem_mb=6000),
    shell:
        "python -m dlgm dbn updown --params {params.cfg} --seed {wildcards.seed} --device {params.device}"
        " --threads {params.threads} --greedy {input.greedy} --train {input.train}"
        " --train-full {input.train_full} --valid {input.valid} --test {input.test}"
        " --model {output.model} --metrics {output.metrics} > {log} 2>&1"


rule dbn_pretrain:
    input:
        train=DBN_MNIST["train"],
        code=dbn_code("cmd_pretrain"),
    output:
        f"{run_dir('dbn', 'backprop')}/pretrained.pt",
    log:
        train_log(run_dir("dbn", "backprop"), "pretrain")["log"],
    benchmark:
        train_log(run_dir("dbn", "backprop"), "pretrain")["benchmark"]
    params:
        cfg=lambda w: params(DBN["backprop"]),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(120, mem_mb=6000),
    shell:
        "python -m dlgm dbn pretrain --params {params.cfg} --seed {wildcards.seed} --device {params.device}"
        " --threads {params.threads} --train {input.train} --out {output} > {log} 2>&1"


# backprop starts from the HS06 stack; the baseline from random weights.
dbn_pretrained = lambda w: (
    {"pretrained": rules.dbn_pretrain.output[0].format(seed=w.seed)} if w.dbn_variant == "backprop" else {}
)


rule dbn_finetune:
    input:
        unpack(dbn_pretrained),
        **{k: DBN_MNIST[k] for k in ("train", "valid", "test")},
        code=dbn_code("cmd_finetune"),
    output:
        model=f"{run_dir('dbn', '{dbn_variant}')}/model.pt",
        metrics=f"{run_dir('dbn', '{dbn_variant}')}/metrics.json",
    log:
        train_log(run_dir("dbn", "{dbn_variant}"), "finetune")["log"],
    benchmark:
        train_log(run_dir("dbn", "{dbn_variant}"), "finetune")["benchmark"]
    params:
        cfg=lambda w: params(DBN[w.dbn_variant]),
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
        updown=expand(rules.dbn_updown.output.model, seed=DBN_SEED0),
        pretrained=expand(rules.dbn_pretrain.output[0], seed=DBN_SEED0),
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
    metrics=expand(f"{run_dir('dbn', '{variant}')}/metrics.json", variant=DBN_VARIANTS, seed=seeds_of("dbn")),
    figures=DBN_FIGURES,
)
