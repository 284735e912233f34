# Speech: Graves, Jaitly & Mohamed 2013 (GJM13, hybrid DBLSTM-HMM) and Graves, Mohamed & Hinton
# 2013 (GMH13, CTC), on FSDD connected digits (always) and TIMIT (when data.timit_path is set).
#   {corpus}_gmm_hmm: Baum-Welch GMM-HMM -> forced alignments (frame state targets)
#   {corpus}_hybrid:  DBLSTM trained on those alignments, Viterbi with scaled likelihoods
#   {corpus}_ctc:     DBLSTM trained with CTC over phones
# Every training rule writes data/runs/rnn_hmm/<corpus>_<system>/seed<N>/ and resumes from its checkpoints.
RNN_HMM = config["rnn_hmm"]
RNN_HMM_CORPORA = ["fsdd"] + (["timit"] if config["data"]["timit_path"] else [])
RNN_HMM_SYSTEMS = ["gmm_hmm", "hybrid", "ctc"]
RNN_HMM_SEED0 = seeds_of("rnn_hmm")[0]  # the figures show the first seed
RNN_HMM_FIGURES = ["state_path", "per_by_system", "phone_confusion"]
# One thread per job (train_threads): the LSTM recursions and the HMM time loops are sequential small
# operations that gain little from intra-op threads (and thrash on a busy machine); on a GPU threads do not matter.

wildcard_constraints:
    corpus="fsdd|timit",


# A system's section plus the front-end switch all three share.
rnn_hmm_params = lambda system: dict(RNN_HMM[system], utterance_cmvn=RNN_HMM["utterance_cmvn"])
rnn_hmm_data = lambda w: [f"{PROCESSED}/{w.corpus}/{split}.pt" for split in ("train", "dev", "test")] + [
    f"{PROCESSED}/{w.corpus}/meta.json"
]
rnn_hmm_run = lambda system: run_dir("rnn_hmm", f"{{corpus}}_{system}")


# The training command of one system (CLI name with a dash, variant with an underscore): every file
# it reads or writes is one of the rule's named inputs and outputs, passed as --<name>.
rnn_hmm_shell = lambda system, inputs=(), outputs=(): (
    f"python -m dlgm rnn_hmm {system.replace('_', '-')} --params {{params.cfg}} --data {{params.data}}"
    f" --variant {{wildcards.corpus}}_{system} --seed {{wildcards.seed}}"
    f" --device {{params.device}} --threads {{params.threads}} --metrics {{output.metrics}} "
    + " ".join([f"--{name} {{input.{name}}}" for name in inputs] + [f"--{name} {{output.{name}}}" for name in outputs])
    + " > {log} 2>&1"
)


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
        data=lambda w: f"{PROCESSED}/{w.corpus}",
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
        data=lambda w: f"{PROCESSED}/{w.corpus}",
        threads=train_threads,
    threads: 1
    resources:
        **train_resources(runtime=600),
    shell:
        rnn_hmm_shell("hybrid", inputs=["gmm", "alignments"], outputs=["model", "extras"])


rule rnn_hmm_ctc:
    input:
        data=rnn_hmm_data,
        code=code("dlgm.commands.rnn_hmm:cmd_ctc"),
    output:
        metrics=f"{rnn_hmm_run('ctc')}/metrics.json",
        model=f"{rnn_hmm_run('ctc')}/model.pt",
    log:
        train_log(rnn_hmm_run("ctc"), "ctc")["log"],
    benchmark:
        train_log(rnn_hmm_run("ctc"), "ctc")["benchmark"]
    params:
        cfg=lambda w: params(rnn_hmm_params("ctc")),
        device=config["device"],
        data=lambda w: f"{PROCESSED}/{w.corpus}",
        threads=train_threads,
    threads: 1
    resources:
        **train_resources(runtime=600),
    shell:
        rnn_hmm_shell("ctc", outputs=["model"])


rule rnn_hmm_plot:
    input:
        metrics=lambda w: expand(
            f"{rnn_hmm_run('{system}')}/metrics.json", corpus=w.corpus, system=RNN_HMM_SYSTEMS, seed=seeds_of("rnn_hmm")
        ),
        example=expand(rules.rnn_hmm_gmm_hmm.output.example, seed=RNN_HMM_SEED0, allow_missing=True),
        extras=expand(rules.rnn_hmm_hybrid.output.extras, seed=RNN_HMM_SEED0, allow_missing=True),
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


register_report(
    "rnn_hmm",
    metrics=expand(
        f"{rnn_hmm_run('{system}')}/metrics.json",
        corpus=RNN_HMM_CORPORA, system=RNN_HMM_SYSTEMS, seed=seeds_of("rnn_hmm"),
    ),
    figures=expand(f"{FIGURES}/rnn_hmm/{{corpus}}_{{name}}.png", corpus=RNN_HMM_CORPORA, name=RNN_HMM_FIGURES),
)
