# Collobert et al. 2011, "Natural Language Processing (Almost) from Scratch": the window network
# trained with the word-level (wll) or sentence-level (sll, a CRF over network scores) likelihood.
# One job per task x likelihood x seed: data/runs/nn_crf/<task>_<likelihood>/seed<N>/ holds
# metrics.json, model.pt, curve.csv (and checkpoint_train.pt for resume). Figures come from plot_nn_crf.
# Ablations (config ablations.nn_crf) run the same rule into data/runs/nn_crf/<name>/.
NN_CRF = config["nn_crf"]
# task -> (processed corpus, kind); kind chunk = F1 over chunks/entities, pos = per-word accuracy
NN_CRF_TASKS = {
    "chunk": ("conll2000", "chunk"),
    "ner": ("conll2003", "chunk"),
    "pos_ptb": ("ptb_pos", "pos"),
    "pos_wsj": ("wsj_pos", "pos"),
}
NN_CRF_RUN = [t for t in NN_CRF["tasks"] if t != "pos_wsj" or config["data"]["ptb_path"]]
NN_CRF_VARIANTS = [f"{t}_{l}" for t in NN_CRF_RUN for l in NN_CRF["likelihoods"]]
NN_CRF_SETTINGS = {k: v for k, v in NN_CRF.items() if k not in ("seeds", "tasks", "likelihoods", "resources")}
NN_CRF_FIGURE_NAMES = ("transitions", "per_type_f1", "learning_curves", "wll_vs_sll")
NN_CRF_FIGURES = [f"{FIGURES}/nn_crf/{n}.png" for n in NN_CRF_FIGURE_NAMES]
NN_CRF_RUNS = expand(f"{RUNS}/nn_crf/{{variant}}/seed{{seed}}", variant=NN_CRF_VARIANTS, seed=seeds_of("nn_crf"))
NN_CRF_METRICS = [f"{run}/metrics.json" for run in NN_CRF_RUNS]
# Ablations (config ablations.nn_crf): a variant's run with changed settings, in data/runs/nn_crf/<name>/;
# task and likelihood come from the real variant its chain starts from.
NN_CRF_ABLATIONS = ablations_of("nn_crf")
nn_crf_params = lambda variant: ablation_params("nn_crf", variant, NN_CRF_VARIANTS, lambda root: NN_CRF_SETTINGS)
nn_crf_task = lambda variant: ablation_root("nn_crf", variant, NN_CRF_VARIANTS).rsplit("_", 1)[0]
nn_crf_likelihood = lambda variant: ablation_root("nn_crf", variant, NN_CRF_VARIANTS).rsplit("_", 1)[1]
nn_crf_split = lambda split: lambda w: f"{PROCESSED}/{NN_CRF_TASKS[nn_crf_task(w.variant)][0]}/{split}.pt"
check_ablations("nn_crf", NN_CRF_VARIANTS, lambda root: NN_CRF_SETTINGS)
RUN_PARAMS["nn_crf"] = lambda variant: (nn_crf_params(variant) if variant in NN_CRF_VARIANTS + list(NN_CRF_ABLATIONS)
                                        else None)


rule nn_crf_train:
    input:
        train=nn_crf_split("train"),
        valid=nn_crf_split("valid"),
        test=nn_crf_split("test"),
        dictionary=lambda w: [f"{PROCESSED}/{c}/train.pt" for c in nn_crf_params(w.variant)["dictionary_from"]
                              if c != "own"],
        code=code("dlgm.commands.nn_crf:cmd_train"),
    output:
        metrics=f"{RUNS}/nn_crf/{{variant}}/seed{{seed}}/metrics.json",
        model=f"{RUNS}/nn_crf/{{variant}}/seed{{seed}}/model.pt",
        curve=f"{RUNS}/nn_crf/{{variant}}/seed{{seed}}/curve.csv",
    wildcard_constraints:
        variant=names_pattern(NN_CRF_VARIANTS + list(NN_CRF_ABLATIONS)),
    log:
        train_log(f"{RUNS}/nn_crf/{{variant}}/seed{{seed}}", "train")["log"],
    benchmark:
        train_log(f"{RUNS}/nn_crf/{{variant}}/seed{{seed}}", "train")["benchmark"]
    params:
        cfg=lambda w: params(nn_crf_params(w.variant)),
        kind=lambda w: NN_CRF_TASKS[nn_crf_task(w.variant)][1],
        likelihood=lambda w: nn_crf_likelihood(w.variant),
        device=config["device"],
        threads=train_threads,
    threads: 1  # a small network: one thread is as fast, and two jobs share a 2-core machine well
    resources:
        **train_resources(NN_CRF["resources"]["runtime"], NN_CRF["resources"]["mem_mb"]),
    shell:
        "python -m dlgm nn_crf train --params {params.cfg} --kind {params.kind}"
        " --likelihood {params.likelihood} --variant {wildcards.variant}"
        " --seed {wildcards.seed} --device {params.device} --threads {params.threads}"
        " --train {input.train} --valid {input.valid} --test {input.test} --dictionary-from {input.dictionary:q}"
        " --model {output.model} --metrics {output.metrics} --curve {output.curve} > {log} 2>&1"


rule plot_nn_crf:
    input:
        metrics=NN_CRF_METRICS,
        models=[f"{run}/model.pt" for run in NN_CRF_RUNS],
        curves=[f"{run}/curve.csv" for run in NN_CRF_RUNS],
        papers="config/papers.yaml",
        code=code("dlgm.commands.nn_crf:cmd_plot"),
    output:
        **{name: report(f"{FIGURES}/nn_crf/{name}.png", category="nn_crf") for name in NN_CRF_FIGURE_NAMES},
        captions=[f.replace(".png", ".txt") for f in NN_CRF_FIGURES],
    log:
        "reports/logs/plot_nn_crf.log",
    localrule: True
    shell:
        "python -m dlgm nn_crf plot --metrics {input.metrics:q} --models {input.models:q} --curves {input.curves:q}"
        " --papers {input.papers} --transitions {output.transitions} --per-type-f1 {output.per_type_f1}"
        " --learning-curves {output.learning_curves} --wll-vs-sll {output.wll_vs_sll} > {log} 2>&1"


NN_CRF_NOTES = [
    "Window network from scratch (Collobert et al. 2011, Table 4 rows): words + capitalisation only, "
    "random embeddings; dictionary = the task's training words (the paper: 100,000 WSJ words); "
    "digits mapped to 0; model of the best validation epoch (CoNLL-2003 testa; CoNLL-2000: last 1,000 "
    "training sentences held out).",
    "POS rows use NLTK's open 10% PTB sample (WSJ files 0001-0199) and have no paper value to match.",
]
if (NN_CRF["batch_size"], NN_CRF["lr"], NN_CRF["lr_decay"]) != (1, 0.01, 0.0):
    NN_CRF_NOTES.append(
        f"This run deviates from the paper's SGD (one sentence per step, lambda = 0.01 / fan-in): "
        f"{NN_CRF['batch_size']} sentences per step, lambda = {NN_CRF['lr']} / fan-in decaying as "
        f"1/(1 + {NN_CRF['lr_decay']} epoch), {NN_CRF['epochs']} epochs."
    )
if "pos_wsj" in NN_CRF["tasks"] and not config["data"]["ptb_path"]:
    NN_CRF_NOTES.append(
        "WSJ POS (pos_wsj_*) not run: set data.ptb_path to a local Penn Treebank-3 copy (licensed, LDC99T42)."
    )

register_report("nn_crf", metrics=NN_CRF_METRICS + ablation_metrics("nn_crf"), figures=NN_CRF_FIGURES, notes=NN_CRF_NOTES)
