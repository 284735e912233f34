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
# One thread per job: the LSTM recursions and the HMM time loops are sequential small operations that
# gain little from intra-op threads (and thrash on a busy machine); on a GPU threads do not matter.
rnn_hmm_threads = lambda w, threads: config["threads"] or threads

wildcard_constraints:
    corpus="fsdd|timit",


# A system's section plus the front-end switch all three share.
rnn_hmm_params = lambda system: dict(RNN_HMM[system], utterance_cmvn=RNN_HMM["utterance_cmvn"])
rnn_hmm_data = lambda w: [f"{PROCESSED}/{w.corpus}/{split}.pt" for split in ("train", "dev", "test")] + [
    f"{PROCESSED}/{w.corpus}/meta.json"
]
# The training command of each system; {system} is the CLI name, the variant uses underscores.
RNN_HMM_CMD = (
    "python -m dlgm rnn_hmm {system} --params {{params.cfg}} --data {{params.data}}"
    " --variant {{wildcards.corpus}}_{variant} --seed {{wildcards.seed}}"
    " --device {{params.device}} --threads {{params.threads}} --out {{output.metrics}}"
)


rule rnn_hmm_gmm_hmm:
    input:
        data=rnn_hmm_data,
        code=code("dlgm.commands.rnn_hmm:_gmm_hmm"),
    output:
        metrics=f"{run_dir('rnn_hmm', '{corpus}_gmm_hmm')}/metrics.json",
        model=f"{run_dir('rnn_hmm', '{corpus}_gmm_hmm')}/model.pt",
        alignments=f"{run_dir('rnn_hmm', '{corpus}_gmm_hmm')}/alignments.pt",
        example=f"{run_dir('rnn_hmm', '{corpus}_gmm_hmm')}/example.pt",
    log:
        f"{run_dir('rnn_hmm', '{corpus}_gmm_hmm')}/log.txt",
    benchmark:
        f"{run_dir('rnn_hmm', '{corpus}_gmm_hmm')}/benchmark.tsv"
    params:
        cfg=lambda w: params(rnn_hmm_params("gmm_hmm")),
        device=config["device"],
        data=lambda w: f"{PROCESSED}/{w.corpus}",
        threads=rnn_hmm_threads,
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    shell:
        RNN_HMM_CMD.format(system="gmm-hmm", variant="gmm_hmm") + " > {log} 2>&1"


rule rnn_hmm_hybrid:
    input:
        data=rnn_hmm_data,
        gmm=rules.rnn_hmm_gmm_hmm.output.model,
        alignments=rules.rnn_hmm_gmm_hmm.output.alignments,
        code=code("dlgm.commands.rnn_hmm:_hybrid"),
    output:
        metrics=f"{run_dir('rnn_hmm', '{corpus}_hybrid')}/metrics.json",
        model=f"{run_dir('rnn_hmm', '{corpus}_hybrid')}/model.pt",
        extras=f"{run_dir('rnn_hmm', '{corpus}_hybrid')}/extras.pt",
    log:
        f"{run_dir('rnn_hmm', '{corpus}_hybrid')}/log.txt",
    benchmark:
        f"{run_dir('rnn_hmm', '{corpus}_hybrid')}/benchmark.tsv"
    params:
        cfg=lambda w: params(rnn_hmm_params("hybrid")),
        device=config["device"],
        data=lambda w: f"{PROCESSED}/{w.corpus}",
        threads=rnn_hmm_threads,
        gmm=lambda w, input: str(Path(input.gmm).parent),
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=600,
    shell:
        RNN_HMM_CMD.format(system="hybrid", variant="hybrid") + " --gmm {params.gmm} > {log} 2>&1"


rule rnn_hmm_ctc:
    input:
        data=rnn_hmm_data,
        code=code("dlgm.commands.rnn_hmm:_ctc"),
    output:
        metrics=f"{run_dir('rnn_hmm', '{corpus}_ctc')}/metrics.json",
        model=f"{run_dir('rnn_hmm', '{corpus}_ctc')}/model.pt",
    log:
        f"{run_dir('rnn_hmm', '{corpus}_ctc')}/log.txt",
    benchmark:
        f"{run_dir('rnn_hmm', '{corpus}_ctc')}/benchmark.tsv"
    params:
        cfg=lambda w: params(rnn_hmm_params("ctc")),
        device=config["device"],
        data=lambda w: f"{PROCESSED}/{w.corpus}",
        threads=rnn_hmm_threads,
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=600,
    shell:
        RNN_HMM_CMD.format(system="ctc", variant="ctc") + " > {log} 2>&1"


rule rnn_hmm_plot:
    input:
        metrics=lambda w: expand(
            f"{run_dir('rnn_hmm', '{corpus}_{system}')}/metrics.json",
            corpus=w.corpus, system=RNN_HMM_SYSTEMS, seed=seeds_of("rnn_hmm"),
        ),
        example=expand(rules.rnn_hmm_gmm_hmm.output.example, seed=RNN_HMM_SEED0, allow_missing=True),
        extras=expand(rules.rnn_hmm_hybrid.output.extras, seed=RNN_HMM_SEED0, allow_missing=True),
        code=code("dlgm.commands.rnn_hmm:_plot"),
    output:
        **{name: report(f"{FIGURES}/rnn_hmm/{{corpus}}_{name}.png", category="rnn_hmm") for name in RNN_HMM_FIGURES},
        captions=[f"{FIGURES}/rnn_hmm/{{corpus}}_{name}.txt" for name in RNN_HMM_FIGURES],
    params:
        gmm=lambda w, input: str(Path(input.example[0]).parent),
        hybrid=lambda w, input: str(Path(input.extras[0]).parent),
        figdir=lambda w, output: str(Path(output.state_path).parent),
    log:
        "reports/logs/rnn_hmm_{corpus}_plot.log",
    localrule: True
    shell:
        "python -m dlgm rnn_hmm plot --metrics {input.metrics} --gmm {params.gmm} --hybrid {params.hybrid}"
        " --figures {params.figdir} --prefix {wildcards.corpus}_ > {log} 2>&1"


register_report(
    "rnn_hmm",
    metrics=expand(
        f"{run_dir('rnn_hmm', '{corpus}_{system}')}/metrics.json",
        corpus=RNN_HMM_CORPORA, system=RNN_HMM_SYSTEMS, seed=seeds_of("rnn_hmm"),
    ),
    figures=expand(f"{FIGURES}/rnn_hmm/{{corpus}}_{{name}}.png", corpus=RNN_HMM_CORPORA, name=RNN_HMM_FIGURES),
)
