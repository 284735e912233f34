# Speech: Graves, Jaitly & Mohamed 2013 (GJM13, hybrid DBLSTM-HMM) and Graves, Mohamed & Hinton
# 2013 (GMH13, CTC), on FSDD connected digits (always), NLTK's TIMIT sample (one corpus per
# speaker fold: timit_sample_fold<k>) and TIMIT (when data.timit_path is set).
#   {corpus}_gmm_hmm: Baum-Welch GMM-HMM -> forced alignments (frame state targets)
#   {corpus}_hybrid:  DBLSTM trained on those alignments, Viterbi with scaled likelihoods
#   {corpus}_hybrid_handlabels: the same trained on TIMIT's hand-labelled phone frames (TIMIT corpora only)
#   {corpus}_fullsum: the same DBLSTM trained by the transcript HMM's full-sum likelihood (no alignment)
#   {corpus}_ctc:     DBLSTM trained with CTC over phones
# Every training rule writes data/runs/rnn_hmm/<corpus>_<system>/seed<N>/ and resumes from its checkpoints;
# rnn_hmm_folds summarises a system over the TIMIT-sample folds (mean and spread) for the report.
RNN_HMM = config["rnn_hmm"]
RNN_HMM_SAMPLE_FOLDS = [
    f"timit_sample_fold{k}"
    for k in (RNN_HMM["timit_sample_folds"] if RNN_HMM["timit_sample_folds"] is not None
              else range(config["data"]["timit_sample"]["folds"]))
]
RNN_HMM_CORPORA = ["fsdd"] + RNN_HMM_SAMPLE_FOLDS + (["timit"] if config["data"]["timit_path"] else [])
RNN_HMM_SYSTEMS = ["gmm_hmm", "hybrid", "fullsum", "ctc"]
RNN_HMM_SEED0 = seeds_of("rnn_hmm")[0]  # the figures show the first seed
RNN_HMM_FIGURES = ["state_path", "per_by_system", "phone_confusion"]
# One thread per job (train_threads): tiny nets ran slower on two threads and the HMM time loops are
# sequential, so many small jobs share the cores best; the paper-size 5 x 500 hybrid ran 2.1x as fast on two
# (docs/speed.md: on a small CPU machine, --set-threads rnn_hmm_hybrid=2 rnn_hmm_fullsum=2); on a GPU threads do not matter.

wildcard_constraints:
    corpus=r"fsdd|timit|timit_sample_fold\d+",


# Systems of one corpus: TIMIT corpora (hand-labelled frames) add the hybrid on the hand labels.
rnn_hmm_systems = lambda corpus: RNN_HMM_SYSTEMS + ([] if corpus == "fsdd" else ["hybrid_handlabels"])


# A system's section plus the front-end switch all share; the full-sum hybrid takes the hybrid's
# network and budget, the hand-label hybrid the hybrid's section with other targets.
rnn_hmm_sections = {
    "gmm_hmm": lambda: RNN_HMM["gmm_hmm"],
    "hybrid": lambda: RNN_HMM["hybrid"],
    "hybrid_handlabels": lambda: dict(RNN_HMM["hybrid"], targets="hand_labels"),
    "fullsum": lambda: dict(RNN_HMM["hybrid"], **RNN_HMM["fullsum"]),
    "ctc": lambda: RNN_HMM["ctc"],
}
rnn_hmm_params = lambda system: dict(rnn_hmm_sections[system](), utterance_cmvn=RNN_HMM["utterance_cmvn"])
# timit_sample_fold<k> lives in data/processed/timit_sample/fold<k>/
rnn_hmm_corpus_dir = lambda corpus: f"{PROCESSED}/{corpus.replace('timit_sample_fold', 'timit_sample/fold')}"
rnn_hmm_corpus_files = lambda corpus: [f"{rnn_hmm_corpus_dir(corpus)}/{split}.pt" for split in ("train", "dev", "test")] + [
    f"{rnn_hmm_corpus_dir(corpus)}/meta.json"
]
rnn_hmm_data = lambda w: rnn_hmm_corpus_files(w.corpus)
rnn_hmm_run = lambda system: run_dir("rnn_hmm", f"{{corpus}}_{system}")


# The training command of one system (CLI name with a dash, variant with an underscore): every file
# it reads or writes is one of the rule's named inputs and outputs, passed as --<name>.
rnn_hmm_shell = lambda system, inputs=(), outputs=(), command=None, extra="": (
    f"python -m dlgm rnn_hmm {(command or system).replace('_', '-')} --params {{params.cfg}} --data {{params.data}}"
    f" --variant {{wildcards.corpus}}_{system} --seed {{wildcards.seed}}"
    f" --device {{params.device}} --threads {{params.threads}} --metrics {{output.metrics}} "
    + " ".join([f"--{name} {{input.{name}}}" for name in inputs] + [f"--{name} {{output.{name}}}" for name in outputs])
    + f"{extra} > {{log}} 2>&1"
)
# init_from_hybrid: the full-sum run starts from the trained hybrid of its corpus and seed. Two starts
# are refused when the job enters the DAG, not at load, so that a global init_from_hybrid fails only
# the init_ce_epochs ablations that are asked for.
rnn_hmm_hybrid_start = lambda corpus, seed, cfg, run: (
    {} if not cfg.get("init_from_hybrid")
    else refuse(f"rnn_hmm {run}: init_from_hybrid and init_ce_epochs {cfg['init_ce_epochs']} are two starts of "
                "the full-sum network; set init_ce_epochs to 0 or init_from_hybrid to false")
    if cfg.get("init_ce_epochs", 0) > 0
    else {"hybrid": rules.rnn_hmm_hybrid.output.model.format(corpus=corpus, seed=seed)}
)
rnn_hmm_start_arg = lambda w, input: f" --hybrid {input.hybrid}" if "hybrid" in input.keys() else ""
# the command-line options of the files a network system reads beside its corpus (the interim look and ablations)
rnn_hmm_input_args = lambda w, input: " ".join(f"--{k} {input[k]}" for k in ("gmm", "alignments", "hybrid") if k in input.keys())


rule rnn_hmm_gmm_hmm:
    input:
        data=rnn_hmm_data,
        code=code("dlgm.commands.rnn_hmm:cmd_gmm_hmm"),
    output:
        metrics=f"{rnn_hmm_run('gmm_hmm')}/metrics.json",
        model=f"{rnn_hmm_run('gmm_hmm')}/model.pt",
        alignments=f"{rnn_hmm_run('gmm_hmm')}/alignments.pt",
        example=f"{rnn_hmm_run('gmm_hmm')}/example.pt",
    log:
        train_log(rnn_hmm_run("gmm_hmm"), "gmm_hmm")["log"],
    benchmark:
        train_log(rnn_hmm_run("gmm_hmm"), "gmm_hmm")["benchmark"]
    params:
        cfg=lambda w: params(rnn_hmm_params("gmm_hmm")),
        device=config["device"],
        data=lambda w: rnn_hmm_corpus_dir(w.corpus),
        threads=train_threads,
    threads: 1
    resources:
        **train_resources(runtime=120),
    shell:
        rnn_hmm_shell("gmm_hmm", outputs=["model", "alignments", "example"])


rule rnn_hmm_hybrid:
    input:
        data=rnn_hmm_data,
        gmm=rules.rnn_hmm_gmm_hmm.output.model,
        alignments=rules.rnn_hmm_gmm_hmm.output.alignments,
        code=code("dlgm.commands.rnn_hmm:cmd_hybrid"),
    output:
        metrics=f"{rnn_hmm_run('hybrid')}/metrics.json",
        model=f"{rnn_hmm_run('hybrid')}/model.pt",
        extras=f"{rnn_hmm_run('hybrid')}/extras.pt",
    log:
        train_log(rnn_hmm_run("hybrid"), "hybrid")["log"],
    benchmark:
        train_log(rnn_hmm_run("hybrid"), "hybrid")["benchmark"]
    params:
        cfg=lambda w: params(rnn_hmm_params("hybrid")),
        device=config["device"],
        data=lambda w: rnn_hmm_corpus_dir(w.corpus),
        threads=train_threads,
    threads: 1
    resources:
        **train_resources(runtime=600),
    shell:
        rnn_hmm_shell("hybrid", inputs=["gmm", "alignments"], outputs=["model", "extras"])


rule rnn_hmm_hybrid_handlabels:
    input:
        data=rnn_hmm_data,
        gmm=rules.rnn_hmm_gmm_hmm.output.model,
        alignments=rules.rnn_hmm_gmm_hmm.output.alignments,
        code=code("dlgm.commands.rnn_hmm:cmd_hybrid"),
    output:
        metrics=f"{rnn_hmm_run('hybrid_handlabels')}/metrics.json",
        model=f"{rnn_hmm_run('hybrid_handlabels')}/model.pt",
        extras=f"{rnn_hmm_run('hybrid_handlabels')}/extras.pt",
    log:
        train_log(rnn_hmm_run("hybrid_handlabels"), "hybrid_handlabels")["log"],
    benchmark:
        train_log(rnn_hmm_run("hybrid_handlabels"), "hybrid_handlabels")["benchmark"]
    params:
        cfg=lambda w: params(rnn_hmm_params("hybrid_handlabels")),
        device=config["device"],
        data=lambda w: rnn_hmm_corpus_dir(w.corpus),
        threads=train_threads,
    threads: 1
    resources:
        **train_resources(runtime=600),
    shell:
        rnn_hmm_shell("hybrid_handlabels", inputs=["gmm", "alignments"], outputs=["model", "extras"], command="hybrid")


rule rnn_hmm_fullsum:
    input:
        unpack(lambda w: rnn_hmm_hybrid_start(w.corpus, w.seed, RNN_HMM["fullsum"], f"{w.corpus}_fullsum")),
        data=rnn_hmm_data,
        gmm=rules.rnn_hmm_gmm_hmm.output.model,
        alignments=rules.rnn_hmm_gmm_hmm.output.alignments,
        code=code("dlgm.commands.rnn_hmm:cmd_fullsum"),
    output:
        metrics=f"{rnn_hmm_run('fullsum')}/metrics.json",
        model=f"{rnn_hmm_run('fullsum')}/model.pt",
        extras=f"{rnn_hmm_run('fullsum')}/extras.pt",
    log:
        train_log(rnn_hmm_run("fullsum"), "fullsum")["log"],
    benchmark:
        train_log(rnn_hmm_run("fullsum"), "fullsum")["benchmark"]
    params:
        cfg=lambda w: params(rnn_hmm_params("fullsum")),
        device=config["device"],
        data=lambda w: rnn_hmm_corpus_dir(w.corpus),
        threads=train_threads,
        start=rnn_hmm_start_arg,
    threads: 1
    resources:
        **train_resources(runtime=600),
    shell:
        rnn_hmm_shell("fullsum", inputs=["gmm", "alignments"], outputs=["model", "extras"], extra="{params.start}")


rule rnn_hmm_ctc:
    input:
        data=rnn_hmm_data,
        code=code("dlgm.commands.rnn_hmm:cmd_ctc"),
    output:
        metrics=f"{rnn_hmm_run('ctc')}/metrics.json",
        model=f"{rnn_hmm_run('ctc')}/model.pt",
        extras=f"{rnn_hmm_run('ctc')}/extras.pt",
    log:
        train_log(rnn_hmm_run("ctc"), "ctc")["log"],
    benchmark:
        train_log(rnn_hmm_run("ctc"), "ctc")["benchmark"]
    params:
        cfg=lambda w: params(rnn_hmm_params("ctc")),
        device=config["device"],
        data=lambda w: rnn_hmm_corpus_dir(w.corpus),
        threads=train_threads,
    threads: 1
    resources:
        **train_resources(runtime=600),
    shell:
        rnn_hmm_shell("ctc", outputs=["model", "extras"])


# A look at a network run under way: the net best on dev so far, decoded as the finished run will
# decode it (the system's own command with --interim), while the run goes on untouched. Beside the
# training job, in the same checkout and config:
#   snakemake --nolock --cores 1 data/runs/rnn_hmm/fsdd_hybrid/seed0/interim.json
# The checkpoint of the system's last training stage is an input, so a newer epoch makes the look stale.
rnn_hmm_last_stage = lambda system: {
    "fullsum": "fullsum", "ctc": "ctc",
}.get(system, "hybrid" + (f"_realign{n}" if (n := RNN_HMM["hybrid"]["realign_rounds"]) else ""))
rnn_hmm_interim_inputs = lambda w: {
    "data": rnn_hmm_corpus_files(w.corpus),
    **({} if w.system == "ctc" else rnn_hmm_gmm_files(w.corpus, w.seed)),
    **(rnn_hmm_hybrid_start(w.corpus, w.seed, RNN_HMM["fullsum"], f"{w.corpus}_fullsum") if w.system == "fullsum" else {}),
    "checkpoint": f"{RUNS}/rnn_hmm/{w.corpus}_{w.system}/seed{w.seed}/checkpoint_{rnn_hmm_last_stage(w.system)}.pt",
}


rule rnn_hmm_interim:
    input:
        unpack(rnn_hmm_interim_inputs),
        code=code(*(f"dlgm.commands.rnn_hmm:cmd_{c}" for c in ("hybrid", "fullsum", "ctc"))),
    output:
        f"{rnn_hmm_run('{system}')}/interim.json",
    wildcard_constraints:
        system="hybrid|hybrid_handlabels|fullsum|ctc",
    log:
        f"{rnn_hmm_run('{system}')}/interim.log",
    params:
        cfg=lambda w: params(rnn_hmm_params(w.system)),
        command=lambda w: w.system.replace("_handlabels", ""),
        inputs=rnn_hmm_input_args,
        run=rnn_hmm_run("{system}"),
        device=config["device"],
        data=lambda w: rnn_hmm_corpus_dir(w.corpus),
        threads=train_threads,
    threads: 1
    resources:
        **train_resources(runtime=60),
    shell:
        "python -m dlgm rnn_hmm {params.command} --params {params.cfg} --data {params.data}"
        " --variant {wildcards.corpus}_{wildcards.system} --seed {wildcards.seed} --device {params.device}"
        " --threads {params.threads} --metrics {params.run}/metrics.json {params.inputs} --model {params.run}/model.pt"
        " --extras {params.run}/extras.pt --interim {output} > {log} 2>&1"


# Figures of one corpus: the Viterbi paths of every system on its first test utterance (with the hand
# labels where the corpus has them), error rates by system, the hybrid's phone confusion.
rule rnn_hmm_plot:
    input:
        metrics=lambda w: expand(
            f"{rnn_hmm_run('{system}')}/metrics.json", corpus=w.corpus, system=rnn_hmm_systems(w.corpus),
            seed=seeds_of("rnn_hmm"),
        ),
        example=expand(rules.rnn_hmm_gmm_hmm.output.example, seed=RNN_HMM_SEED0, allow_missing=True),
        extras=lambda w: expand(
            f"{rnn_hmm_run('{system}')}/extras.pt", corpus=w.corpus, seed=RNN_HMM_SEED0,
            system=[s for s in rnn_hmm_systems(w.corpus) if s != "gmm_hmm"],
        ),
        code=code("dlgm.commands.rnn_hmm:cmd_plot"),
    output:
        **{name: report(f"{FIGURES}/rnn_hmm/{{corpus}}_{name}.png", category="rnn_hmm") for name in RNN_HMM_FIGURES},
        captions=[f"{FIGURES}/rnn_hmm/{{corpus}}_{name}.txt" for name in RNN_HMM_FIGURES],
    log:
        "reports/logs/rnn_hmm_{corpus}_plot.log",
    localrule: True
    shell:
        "python -m dlgm rnn_hmm plot --metrics {input.metrics} --example {input.example} --extras {input.extras}"
        " --state-path {output.state_path} --per-by-system {output.per_by_system}"
        " --phone-confusion {output.phone_confusion} > {log} 2>&1"


# One system over the TIMIT-sample folds: mean and sample standard deviation of each metric
# (variant timit_sample_<system>, the row the report shows).
rule rnn_hmm_folds:
    input:
        metrics=lambda w: expand(
            f"{RUNS}/rnn_hmm/{{corpus}}_{w.system}/seed{{seed}}/metrics.json",
            corpus=RNN_HMM_SAMPLE_FOLDS, seed=seeds_of("rnn_hmm"),
        ),
        code=code("dlgm.commands.rnn_hmm:cmd_folds"),
    output:
        metrics=f"{RUNS}/rnn_hmm/timit_sample_{{system}}/folds/metrics.json",
    wildcard_constraints:
        system="gmm_hmm|hybrid|hybrid_handlabels|fullsum|ctc",
    log:
        "data/logs/rnn_hmm_timit_sample_{system}_folds.log",
    localrule: True
    shell:
        "python -m dlgm rnn_hmm folds --variant timit_sample_{wildcards.system} --metrics {input.metrics}"
        " --out {output.metrics} > {log} 2>&1"


# Ablations (config ablations.rnn_hmm): one system's command rerun on its corpus with changed
# parameters, written to data/runs/rnn_hmm/<name>/seed<N>/ (the report compares it with the base).
RNN_HMM_ABLATIONS = ablations_of("rnn_hmm")
# real variants an ablation chain can start from: the trained networks of every corpus
RNN_HMM_BASES = [f"{c}_{s}" for c in RNN_HMM_CORPORA for s in rnn_hmm_systems(c) if s != "gmm_hmm"]


# (corpus, system) of the real variant <corpus>_<system> an ablation's chain starts from
rnn_hmm_split = lambda variant: next((c, variant[len(c) + 1:]) for c in RNN_HMM_CORPORA if variant.startswith(f"{c}_")
                                     and variant[len(c) + 1:] in rnn_hmm_systems(c))
rnn_hmm_ablation_base = lambda name: rnn_hmm_split(ablation_root("rnn_hmm", name, RNN_HMM_BASES))
rnn_hmm_root_params = lambda root: rnn_hmm_params(rnn_hmm_split(root)[1])
rnn_hmm_ablation_params = lambda name: ablation_params("rnn_hmm", name, RNN_HMM_BASES, rnn_hmm_root_params)
# its corpus, the command's code, (but for ctc) the GMM-HMM and alignments of the same seed and, with
# init_from_hybrid, the trained hybrid
rnn_hmm_gmm_files = lambda corpus, seed: {
    "gmm": f"{RUNS}/rnn_hmm/{corpus}_gmm_hmm/seed{seed}/model.pt",
    "alignments": f"{RUNS}/rnn_hmm/{corpus}_gmm_hmm/seed{seed}/alignments.pt",
}
rnn_hmm_ablation_inputs = lambda w: (lambda corpus, system: {
    "data": rnn_hmm_corpus_files(corpus),
    **({} if system == "ctc" else rnn_hmm_gmm_files(corpus, w.seed)),
    **rnn_hmm_hybrid_start(corpus, w.seed, rnn_hmm_ablation_params(w.ablation), w.ablation),
})(*rnn_hmm_ablation_base(w.ablation))


for _name in RNN_HMM_ABLATIONS:  # also names of systems on corpora this config does not run
    if re.fullmatch(r"(fsdd|timit|timit_sample_fold\d+)_(gmm_hmm|hybrid|hybrid_handlabels|fullsum|ctc)", _name):
        raise ValueError(f"ablations.rnn_hmm[{_name}]: the name is a system's own variant; choose another")
check_ablations("rnn_hmm", RNN_HMM_BASES, rnn_hmm_root_params)


rule rnn_hmm_ablation:
    input:
        unpack(rnn_hmm_ablation_inputs),
        # the code of every system an ablation can run, listed in the rule itself (not in the input
        # function) so that the code-input check and `snakemake --list-code-changes` see it
        code=code(*(f"dlgm.commands.rnn_hmm:cmd_{c}" for c in ("hybrid", "fullsum", "ctc"))),
    output:
        metrics=f"{run_dir('rnn_hmm', '{ablation}')}/metrics.json",
        model=f"{run_dir('rnn_hmm', '{ablation}')}/model.pt",
        extras=f"{run_dir('rnn_hmm', '{ablation}')}/extras.pt",
    wildcard_constraints:
        ablation=names_pattern(RNN_HMM_ABLATIONS),
    log:
        train_log(run_dir("rnn_hmm", "{ablation}"), "ablation")["log"],
    benchmark:
        train_log(run_dir("rnn_hmm", "{ablation}"), "ablation")["benchmark"]
    params:
        cfg=lambda w: params(rnn_hmm_ablation_params(w.ablation)),
        command=lambda w: rnn_hmm_ablation_base(w.ablation)[1].replace("_handlabels", ""),
        inputs=rnn_hmm_input_args,
        device=config["device"],
        data=lambda w: rnn_hmm_corpus_dir(rnn_hmm_ablation_base(w.ablation)[0]),
        threads=train_threads,
    threads: 1
    resources:
        **train_resources(runtime=600),
    shell:
        "python -m dlgm rnn_hmm {params.command} --params {params.cfg} --data {params.data}"
        " --variant {wildcards.ablation} --seed {wildcards.seed} --device {params.device} --threads {params.threads}"
        " --metrics {output.metrics} {params.inputs} --model {output.model} --extras {output.extras} > {log} 2>&1"


register_report(
    "rnn_hmm",
    metrics=[
        *(f"{rnn_hmm_run(system).format(corpus=corpus, seed=seed)}/metrics.json"
          for corpus in RNN_HMM_CORPORA if not corpus.startswith("timit_sample")
          for system in rnn_hmm_systems(corpus) for seed in seeds_of("rnn_hmm")),
        *expand(rules.rnn_hmm_folds.output.metrics, system=rnn_hmm_systems("timit_sample")),
        *ablation_metrics("rnn_hmm"),
    ],
    figures=expand(
        f"{FIGURES}/rnn_hmm/{{corpus}}_{{name}}.png",
        corpus=[c for c in RNN_HMM_CORPORA if c in ("fsdd", "timit") or c == RNN_HMM_SAMPLE_FOLDS[0]],
        name=RNN_HMM_FIGURES,
    ),
    notes=[
        f"TIMIT sample: {len(RNN_HMM_SAMPLE_FOLDS)} speaker fold(s) of NLTK's TIMIT sample, each trained on 80 "
        "utterances of 10 speakers (the papers trained on TIMIT's 3,696): the timit_sample rows give the mean "
        "and (_fold_sd) the spread over folds and cannot reproduce the papers' TIMIT numbers."
    ],
)
