# Deep Boltzmann machines (Salakhutdinov & Hinton 2009) and AIS for RBMs (Salakhutdinov & Murray 2008).
#   ais_rbm_cd{k}: CD-k RBM -> AIS log Z, test/train log-probability        (SM08 Table 1 rows)
#   dbm{N}: pretrain -> joint train -> AIS + mean-field bounds -> fine-tune  (SH09 rows)
# Every training rule writes into data/runs/dbm/<variant>/seed<N>/ and resumes from its checkpoint.
# Ablations (config ablations.dbm) rerun a model's chain with changed settings into
# data/runs/dbm/<name>/seed<N>/: of a DBM (base dbm2 or dbm3) starting from their base's pretrained or
# jointly trained DBM where the settings of that stage are unchanged; of an RBM (base ais_rbm_cd<k>)
# training and evaluating the RBM again.
DBM = config["dbm"]
DBM_MODELS = [name for name, m in DBM["models"].items() if m.get("enabled", True)]
DISABLED_VARIANTS["dbm"] = [name for name in DBM["models"] if name not in DBM_MODELS]
DBM_RBMS = [f"ais_rbm_cd{k}" for k in DBM["rbm"]["cd_steps"]]
DBM_VARIANTS = DBM_MODELS + DBM_RBMS
DBM_TRAIN = f"{PROCESSED}/mnist/{DBM['train_split']}.pt"
DBM_TEST = f"{PROCESSED}/mnist/{DBM['test_split']}.pt"
dbm_code = lambda command: code(f"dlgm.commands.dbm:{command}")
DBM_FIGURES = [f"{FIGURES}/dbm/{name}.png" for name in ("fantasy_particles", "ais_convergence", "training_curves")]
DBM_SEED0 = seeds_of("dbm")[0]  # the figures show the first seed

# what each stage gets as --params (a change reruns that stage and those after it)
DBM_STAGE_KEYS = ("train_limit", "train_split", "test_split", "labels", "pretrain", "joint", "ais", "finetune")
dbm_rbm_cfg = lambda cd: {"train_limit": DBM["train_limit"], "rbm": DBM["rbm"], "ais": DBM["ais"], "cd_k": int(cd)}
dbm_section = lambda variant: (dbm_rbm_cfg(variant[len("ais_rbm_cd"):]) if variant in DBM_RBMS else
                               {**{k: DBM[k] for k in DBM_STAGE_KEYS}, "model": DBM["models"][variant]})
dbm_params = lambda variant: ablation_params("dbm", variant, DBM_VARIANTS, dbm_section)
check_ablations("dbm", DBM_VARIANTS, dbm_section)
# the RBM runs: SM08's CD-k RBMs and the ablations based on them
DBM_RBM_RUNS = ablation_members("dbm", DBM_RBMS, DBM_VARIANTS)


# `labels` travels only where it is on, so that the unsupervised runs keep their parameters (and resume)
dbm_run_cfg = lambda variant, *keys: (lambda p: {"train_limit": p["train_limit"], **{k: p[k] for k in keys},
                                                  **({"labels": True} if p["labels"] else {}),
                                                  "model": p["model"]})(dbm_params(variant))
# the fine-tuning stage gets the whole DBM config, so that metrics.json records everything the run used
DBM_FINETUNE_CFG = ("train_split", "test_split", "pretrain", "joint", "ais", "finetune")
RUN_PARAMS["dbm"] = lambda variant: (
    dbm_params(variant) if variant in DBM_RBM_RUNS
    else dbm_run_cfg(variant, *DBM_FINETUNE_CFG) if variant in DBM_MODELS + list(ablations_of("dbm")) else None)


# the run whose pretrained / jointly trained DBM a run takes (an ablation of AIS reuses its base's DBM)
dbm_source = lambda variant, keys: stage_source("dbm", variant, DBM_VARIANTS, dbm_params, keys)
DBM_PRETRAIN_KEYS = ("train_limit", "train_split", "labels", "pretrain", "model")
DBM_JOINT_KEYS = DBM_PRETRAIN_KEYS + ("joint",)
DBM_AIS_KEYS = DBM_JOINT_KEYS + ("test_split", "ais")
_dbm_seed0 = lambda variant, name: f"{RUNS}/dbm/{variant}/seed{DBM_SEED0}/{name}"
DBM_RBM_DIR = run_dir("dbm", "{rbm}")
DBM_DIR = run_dir("dbm", "{dbm_model}")

# a stage's file that a run reads: its own, or its nearest base's where that stage's settings are the same
dbm_stage_file = lambda name, keys: stage_file(f"{DBM_DIR}/{name}", "dbm_model", lambda v: dbm_source(v, keys))


wildcard_constraints:
    dbm_model=ablation_family("dbm", DBM_MODELS, DBM_VARIANTS),
    rbm=names_pattern(DBM_RBM_RUNS),


rule dbm_rbm:
    input:
        train=DBM_TRAIN,
        test=DBM_TEST,
        code=dbm_code("cmd_rbm"),
    output:
        metrics=f"{DBM_RBM_DIR}/metrics.json",
        model=f"{DBM_RBM_DIR}/rbm.pt",
        curve=f"{DBM_RBM_DIR}/curve.csv",
    log:
        train_log(DBM_RBM_DIR, "rbm")["log"],
    benchmark:
        train_log(DBM_RBM_DIR, "rbm")["benchmark"]
    params:
        cfg=lambda w: params(dbm_params(w.rbm)),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(120, mem_mb=8000),
    shell:
        "python -m dlgm dbm rbm --params {params.cfg} --variant {wildcards.rbm} --seed {wildcards.seed}"
        " --device {params.device} --threads {params.threads} --train {input.train} --test {input.test}"
        " --model {output.model} --metrics {output.metrics} --curve {output.curve} > {log} 2>&1"


rule dbm_pretrain:
    input:
        train=DBM_TRAIN,
        code=dbm_code("cmd_pretrain"),
    output:
        f"{DBM_DIR}/pretrained.pt",
    log:
        train_log(DBM_DIR, "pretrain")["log"],
    benchmark:
        train_log(DBM_DIR, "pretrain")["benchmark"]
    params:
        cfg=lambda w: params(dbm_run_cfg(w.dbm_model, "pretrain")),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(120, mem_mb=8000),
    shell:
        "python -m dlgm dbm pretrain --params {params.cfg} --seed {wildcards.seed} --device {params.device}"
        " --threads {params.threads} --train {input.train} --out {output} > {log} 2>&1"


rule dbm_train:
    input:
        init=dbm_stage_file("pretrained.pt", DBM_PRETRAIN_KEYS),
        train=DBM_TRAIN,
        code=dbm_code("cmd_train"),
    output:
        model=f"{DBM_DIR}/dbm.pt",
        curve=f"{DBM_DIR}/curve_dbm.csv",
    log:
        train_log(DBM_DIR, "train")["log"],
    benchmark:
        train_log(DBM_DIR, "train")["benchmark"]
    params:
        cfg=lambda w: params(dbm_run_cfg(w.dbm_model, "joint")),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(600, mem_mb=8000),
    shell:
        "python -m dlgm dbm train --params {params.cfg} --seed {wildcards.seed} --device {params.device}"
        " --threads {params.threads} --init {input.init} --train {input.train} --out {output.model}"
        " --curve {output.curve} > {log} 2>&1"


rule dbm_ais:
    input:
        model=dbm_stage_file("dbm.pt", DBM_JOINT_KEYS),
        train=DBM_TRAIN,
        test=DBM_TEST,
        code=dbm_code("cmd_ais"),
    output:
        f"{DBM_DIR}/ais.json",
    log:
        train_log(DBM_DIR, "ais")["log"],
    benchmark:
        train_log(DBM_DIR, "ais")["benchmark"]
    params:
        cfg=lambda w: params(dbm_run_cfg(w.dbm_model, "ais")),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(60, mem_mb=8000),
    shell:
        "python -m dlgm dbm ais --params {params.cfg} --seed {wildcards.seed} --device {params.device}"
        " --threads {params.threads} --model {input.model} --train {input.train} --test {input.test}"
        " --out {output} > {log} 2>&1"


rule dbm_finetune:
    input:
        model=dbm_stage_file("dbm.pt", DBM_JOINT_KEYS),
        ais=dbm_stage_file("ais.json", DBM_AIS_KEYS),
        train=DBM_TRAIN,
        test=DBM_TEST,
        code=dbm_code("cmd_finetune"),
    output:
        metrics=f"{DBM_DIR}/metrics.json",
        curve=f"{DBM_DIR}/curve_finetune.csv",
    log:
        train_log(DBM_DIR, "finetune")["log"],
    benchmark:
        train_log(DBM_DIR, "finetune")["benchmark"]
    params:
        cfg=lambda w: params(dbm_run_cfg(w.dbm_model, *DBM_FINETUNE_CFG)),
        device=config["device"],
        threads=train_threads,
    threads: 2
    resources:
        **train_resources(120, mem_mb=8000),
    shell:
        "python -m dlgm dbm finetune --params {params.cfg} --variant {wildcards.dbm_model} --seed {wildcards.seed}"
        " --device {params.device} --threads {params.threads} --model {input.model} --ais {input.ais}"
        " --train {input.train} --test {input.test} --metrics {output.metrics} --curve {output.curve} > {log} 2>&1"


rule dbm_plot:
    input:
        samples=[_dbm_seed0(m, "dbm.pt") for m in DBM_MODELS],
        ais=[_dbm_seed0(v, "metrics.json") for v in DBM_RBMS] + [_dbm_seed0(m, "ais.json") for m in DBM_MODELS],
        curves=[_dbm_seed0(v, "curve.csv") for v in DBM_RBMS]
        + [_dbm_seed0(m, c) for m in DBM_MODELS for c in ("curve_dbm.csv", "curve_finetune.csv")],
        code=dbm_code("cmd_plot"),
    output:
        samples=report(DBM_FIGURES[0], category="dbm"),
        samples_txt=DBM_FIGURES[0].replace(".png", ".txt"),
        ais=report(DBM_FIGURES[1], category="dbm"),
        ais_txt=DBM_FIGURES[1].replace(".png", ".txt"),
        curves=report(DBM_FIGURES[2], category="dbm"),
        curves_txt=DBM_FIGURES[2].replace(".png", ".txt"),
    log:
        "reports/logs/dbm_plot.log",
    localrule: True
    shell:
        "python -m dlgm dbm plot --models {input.samples:q} --ais {input.ais:q} --curves {input.curves:q}"
        " --fantasy-particles {output.samples} --ais-convergence {output.ais} --training-curves {output.curves}"
        " > {log} 2>&1"


register_report(
    "dbm",
    metrics=expand(f"{RUNS}/dbm/{{variant}}/seed{{seed}}/metrics.json", variant=DBM_RBMS + DBM_MODELS,
                   seed=seeds_of("dbm"))
    + ablation_metrics("dbm"),
    figures=DBM_FIGURES if DBM_MODELS else [],
    notes=[f"DBM variant {name} is disabled in this config, and with it its ablations." for name in DISABLED_VARIANTS["dbm"]],
)
