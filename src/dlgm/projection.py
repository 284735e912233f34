"""Projected wall time of each paper's protocol on this device, from the benchmark table.

Every timed loop is reduced to its matrix products (``dlgm.loop_products`` lists them; the
benchmarks in ``benchmarks/`` time exactly these shapes as their floor). A benchmark row gives
seconds per GEMM flop of dlgm's loop; a rule's projection is the flops its config implies times
that rate. Without a table (``reports/tables/benchmarks.csv``) a quick built-in estimate times one
[100, 784] x [784, 500] product here and assumes the loops run at 1.2x their floor (LSTMs at 3x):
every printed line says which basis it used. Not projected: GMM-HMM training, decoding and data
preparation (no benchmark of theirs).
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Iterable, Mapping

from dlgm.cd_schedule import cd_ramp, layer_ramps
from dlgm.epoch_log import resumed_epoch_seconds
from dlgm.log_z_guards import ASCENT_SWEEPS
from dlgm.loop_products import (ais_spec, cd_spec, clamped_ais_spec, dbm_classifier_spec, dbm_update_spec, flops,
                                lstm_flops, lstm_weights, mlp_spec, sweep_spec, updown_spec, window_spec)
from dlgm.seeds import seeds_of
from dlgm.timefmt import duration

NOT_PROJECTED = "GMM-HMM training, speech decoding and data preparation"  # no benchmark of theirs

MNIST_TRAIN, MNIST_TRAIN_FULL, MNIST_TEST = 50000, 60000, 10000
# ~3 s: FSDD joins 2-7 digits (282 frames on average in the full config's training set); TIMIT sentences ~3 s
FRAMES_PER_UTTERANCE = {"fsdd": 300, "timit": 300}
UTTERANCES = {"timit": (3696, 400)}  # train, dev (FSDD's come from the config, the TIMIT sample's from its folds)
# NLTK's TIMIT sample: 16 speakers of 10 sentences (2 of them SA); a fold tests 16 / folds speakers, takes
# 2 for early stopping and trains on the rest (dlgm.data.timit_sample)
TIMIT_SAMPLE_SPEAKERS, TIMIT_SAMPLE_SENTENCES, TIMIT_SAMPLE_DEV_SPEAKERS = 16, 10, 2
# network outputs (hybrid: HMM states, 3 a phone; CTC: phones + blank) by corpus kind (the TIMIT sample's: TIMIT's)
SPEECH_OUTPUTS = {"fsdd": {"hybrid": 60, "ctc": 21}, "timit": {"hybrid": 183, "ctc": 62}}
# each training rule of a corpus: (system, the benchmark row timing its network); the full-sum hybrid
# trains the hybrid's network (its HMM forward-backward is not timed: small beside the LSTM), the
# hand-label hybrid too, on the TIMIT corpora only
SPEECH_SYSTEMS = (("hybrid", "hybrid"), ("fullsum", "hybrid"), ("hybrid_handlabels", "hybrid"), ("ctc", "ctc"))
# the quick estimate's loop time / product time: 1.2 (the Boltzmann loops' target) unless listed here
QUICK_FACTOR = {"hybrid": 3.0, "ctc": 3.0, "window_wll": 3.0, "window_sll": 3.0, "window_predict": 3.0}
# (train, valid, test) sentences and words of the processed text corpora (their counts.json); pos_wsj:
# WSJ sections 0-18 / 19-21 / 22-24 (Collobert et al. 2011, Sec. 3.1; counts as in Toutanova et al. 2003)
TEXT = {"conll2000": ((7936, 188059), (1000, 23668), (2012, 47377)),
        "conll2003": ((14041, 203621), (3250, 51362), (3453, 46435)),
        "ptb_pos": ((3396, 81793), (273, 6327), (245, 5964)),
        "wsj_pos": ((38219, 912344), (5527, 131768), (5462, 129654))}
NN_CRF_TASKS = {"chunk": ("conll2000", 45), "ner": ("conll2003", 17), "pos_ptb": ("ptb_pos", 46),
                "pos_wsj": ("wsj_pos", 45)}  # corpus, tags (IOBES for chunk and ner)
# An nn_crf job also reads its splits (lists of strings, ~6 s with weights_only), builds its dictionary
# and scores valid and test at the end: ~10 s on the 2-core development CPU, one thread.
NN_CRF_STARTUP_S = 10.0
# Every job starts Python, imports torch and loads its data before its loop: ~1.5 s on the 2-core
# development CPU (smoke-config rules whose loops take milliseconds have benchmark.tsv of 1.5-2.2 s).
STARTUP_S = 1.5


def evaluation_work(sizes, ais_cfg, n_train: int, n_test: int = MNIST_TEST) -> dict[str, float]:
    """GEMM flops of ``likelihood.evaluate`` by rate key: the AIS runs of log Z (the schedule, its
    shorter curve schedules, and the reverse run with its Gibbs sweeps), the per-image AIS and RAISE
    chains on the estimate's images (rate "ais"), and the mean-field bounds on the test and training
    images and on the guard images with their coordinate ascent (rate "dbm_update"; an RBM's log p(v)
    is one product a row)."""
    a, L = ais_cfg, len(sizes) - 1
    temps = sum(n for _, n in a["segments"])
    short = sum(max(1, round(n * a["logprob_scale"])) for _, n in a["segments"])
    rows = a["logprob_images"] * a["logprob_runs"]
    # a Gibbs sweep of the reverse run's chains has the products of one temperature
    steps = temps * (1 + sum(a["curve_scales"]) + bool(a["reverse_sweeps"])) + a["reverse_sweeps"]
    chains = steps * flops(ais_spec(sizes, a["runs"]))
    chains += short * (flops(ais_spec(sizes, rows)) + (flops(clamped_ais_spec(sizes, rows)) if L > 1 else 0))
    images = n_test * a["test_binarisations"] + (a["train_subset"] or n_train)
    guard = a["guard_images"]
    sweep = lambda r: flops(sweep_spec(sizes, r, range(1, L + 1)))  # noqa: E731
    ascent = ASCENT_SWEEPS * flops(sweep_spec(sizes, guard, range(L + 1)))
    bounds = (images * sizes[0] * sizes[1] * 2 if L == 1 else a["mean_field_iterations"] * sweep(images))
    return {"ais": chains, "dbm_update": bounds + a["mean_field_iterations"] * sweep(guard) + ascent}


# -- rates ------------------------------------------------------------------------------------------
def rates_from_table(path: str | Path) -> dict[str, dict]:
    """key -> {"s_per_flop", "device", "basis"} from a benchmarks.csv (rows with flops only)."""
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            extra, key = json.loads(r.get("extra") or "{}"), r.get("key")
            if key and extra.get("flops") and key not in out:
                out[key] = {"s_per_flop": float(r["dlgm_s"]) / float(extra["flops"]), "device": r["device"],
                            "basis": f"{Path(path).name} ({r['size']} sizes)"}
    return out


def _best_seconds(fn, device, repeats: int) -> float:
    import torch

    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


def quick_rates(device=None) -> dict[str, dict]:
    """Two tiny timings on this device: a [100, 784] x [784, 500] product, best of 20, for the
    loops' rates per GEMM flop; weight noise on 2^20 weights (draw, add, remove: WeightNoise's
    work), best of 5, for its rate per weight (``s_per_flop`` of the key "weight_noise")."""
    import torch

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    a, b = torch.rand(100, 784, device=device), torch.rand(784, 500, device=device)
    out = torch.empty(100, 500, device=device)
    rate = _best_seconds(lambda: torch.mm(a, b, out=out), device, 20) / (2 * 100 * 784 * 500)
    weights, noise = torch.zeros(2**20, device=device), torch.empty(2**20, device=device)
    noise_rate = _best_seconds(lambda: (noise.normal_(0.0, 0.075), weights.add_(noise), weights.sub_(noise)),
                               device, 5) / 2**20
    keys = ("cd", "dbm_update", "ais", "updown", "ft_dbn", "ft_dbm", *QUICK_FACTOR)
    rates = {k: rate * QUICK_FACTOR.get(k, 1.2) for k in keys} | {"weight_noise": noise_rate}
    return {k: {"s_per_flop": r, "device": str(device), "basis": "quick estimate (a product and weight noise timed)"}
            for k, r in rates.items()}


# -- the protocol of each rule ----------------------------------------------------------------------
def protocol(config: Mapping) -> list[dict]:
    """[{paper, rule, run, benchmark, work: {rate key: flops}}] for one seed of every rule projected.
    ``benchmark`` is the rule's benchmark.tsv (as in workflow/rules/*.smk) with {seed}."""
    jobs = []

    def job(paper, rule, run, bench, match, startup=STARTUP_S, **work):
        seeds = seeds_of(config, paper, run)
        jobs.append({"paper": paper, "rule": rule, "run": run, "seeds": seeds, "match": match, "startup": startup,
                     "benchmark": f"data/runs/{paper}/{run}/seed{{seed}}/{bench}", "work": work})

    dbn = config["dbn"]
    u, g = dbn["updown"], dbn["updown"]["greedy"]
    nb = u["train_images"] // g["batch_size"]
    stack = list(zip(u["sizes"][:-1], u["sizes"][1:])) + [(u["sizes"][-1] + 10, u["top_size"])]
    job("dbn", "dbn_greedy", "updown", "benchmark_greedy.tsv", ("dbn_greedy", {"dbn_variant": "updown"}),
        cd=g["epochs"] * nb * sum(flops(cd_spec(g["batch_size"], a, b, g["cd_k"])) for a, b in stack))
    ud = u["updown"]
    k_at = lambda e: [k for first, k in ud["gibbs_schedule"] if e >= first][-1]  # noqa: E731
    step = lambda k: flops(updown_spec(u["sizes"], u["top_size"], 10, ud["batch_size"], k))  # noqa: E731
    work = sum(step(k_at(e)) for e in range(ud["epochs"])) * (u["train_images"] // ud["batch_size"])
    work += ud["full_epochs"] * (MNIST_TRAIN_FULL // ud["batch_size"]) * step(k_at(ud["epochs"]))
    job("dbn", "dbn_updown", "updown", "benchmark_updown.tsv", ("dbn_updown", {"dbn_variant": "updown"}), updown=work)
    bp = dbn["backprop"]
    p = bp["pretrain"]
    n = bp["train_images"] or MNIST_TRAIN
    job("dbn", "dbn_pretrain", "backprop", "benchmark_pretrain.tsv", ("dbn_pretrain", {"dbn_variant": "backprop"}),
        cd=p["epochs"] * (n // p["batch_size"]) * sum(
            flops(cd_spec(p["batch_size"], a, b, p["cd_k"])) for a, b in zip(bp["sizes"][:-1], bp["sizes"][1:])))
    for variant in ("backprop", "baseline"):
        v = dbn[variant]
        f = v["finetune"]
        n = v["train_images"] or MNIST_TRAIN
        job("dbn", f"dbn_finetune ({variant})", variant, "benchmark_finetune.tsv",
            ("dbn_finetune", {"dbn_variant": variant}),
            ft_dbn=f["epochs"] * (n // f["batch_size"]) * flops(mlp_spec(v["sizes"] + [10], f["batch_size"])))

    dbm = config["dbm"]
    n = dbm["train_limit"] or MNIST_TRAIN_FULL
    a = dbm["ais"]
    r = dbm["rbm"]
    for k in r["cd_steps"]:
        job("dbm", f"dbm_rbm (CD-{k})", f"ais_rbm_cd{k}", "benchmark_rbm.tsv", ("dbm_rbm", {"cd": str(k)}),
            cd=r["epochs"] * (n // r["batch_size"]) * flops(cd_spec(r["batch_size"], 784, r["n_hidden"], k)),
            **evaluation_work([784, r["n_hidden"]], a, n))
    pre, joint, ft = dbm["pretrain"], dbm["joint"], dbm["finetune"]
    for name, m in dbm["models"].items():
        if not m.get("enabled", True):
            continue
        s = m["sizes"]
        model = {"dbm_model": name}
        job("dbm", f"dbm_pretrain ({name})", name, "benchmark_pretrain.tsv", ("dbm_pretrain", model),
            cd=sum((n // pre["batch_size"]) * flops(cd_spec(pre["batch_size"], s[l], s[l + 1],
                                                               cd_ramp(pre["cd_k"], pre["lr"], every, epoch)[0]))
                   for l, (e, every) in enumerate(zip(m["pretrain_epochs"],
                                                       layer_ramps(pre["cd_ramp_every"], len(m["pretrain_epochs"]))))
                   for epoch in range(e)))
        job("dbm", f"dbm_train ({name})", name, "benchmark_train.tsv", ("dbm_train", model),
            dbm_update=m["epochs"] * (n // joint["batch_size"]) * flops(dbm_update_spec(
                s, joint["batch_size"], joint["n_chains"], joint["mean_field_iterations"], joint["gibbs_steps"])))
        job("dbm", f"dbm_ais ({name})", name, "benchmark_ais.tsv", ("dbm_ais", model),
            **evaluation_work(s, a, n))
        job("dbm", f"dbm_finetune ({name})", name, "benchmark_finetune.tsv", ("dbm_finetune", model),
            ft_dbm=ft["epochs"] * (n // ft["batch_size"]) * flops(dbm_classifier_spec(s, ft["batch_size"])))

    nc = config["nn_crf"]
    dims = (nc["window"] * (nc["word_dim"] + nc["caps_dim"]), nc["hidden"])
    for task in nc["tasks"]:
        corpus, tags = NN_CRF_TASKS[task]
        if task == "pos_wsj" and not config["data"].get("ptb_path"):
            continue
        (n_train, w_train), *evals = TEXT[corpus]
        train_words = w_train * min(1.0, (nc["train_limit"] or n_train) / n_train)
        valid_words, test_words = (w * min(1.0, (nc["eval_limit"] or n) / n) for n, w in evals)
        predict = flops(window_spec(1, *dims, tags, train=False))
        for lik in nc["likelihoods"]:
            job("nn_crf", f"nn_crf_train ({task}_{lik})", f"{task}_{lik}", "benchmark_train.tsv",
                ("nn_crf_train", {"variant": f"{task}_{lik}"}), startup=NN_CRF_STARTUP_S,
                **{f"window_{lik}": nc["epochs"] * train_words * flops(window_spec(1, *dims, tags, train=True)),
                   "window_predict": ((nc["epochs"] + 1) * valid_words + test_words) * predict})

    rh = config["rnn_hmm"]
    for corpus, kind, (n_train, n_dev) in speech_corpora(config):
        for system, network in SPEECH_SYSTEMS:
            if system == "hybrid_handlabels" and kind == "fsdd":
                continue
            c = rh[network]
            # the full-sum hybrid's cross-entropy start (init_ce_epochs) comes before its own epochs
            epochs = c["epochs"] + (rh["fullsum"]["init_ce_epochs"] if system == "fullsum" else 0)
            per = lambda train: lstm_flops(FRAMES_PER_UTTERANCE[kind], c["layers"], c["hidden"],  # noqa: E731
                                           SPEECH_OUTPUTS[kind][network], train=train)
            work = {network: epochs * (n_train * per(True) + n_dev * per(False))}
            if c["weight_noise"] > 0:  # a fresh draw over every weight before each update: its own rate
                work["weight_noise"] = (epochs * math.ceil(n_train / c["batch_size"])
                                        * lstm_weights(c["layers"], c["hidden"], SPEECH_OUTPUTS[kind][network]))
            job("rnn_hmm", f"rnn_hmm_{system} ({corpus})", f"{corpus}_{system}",
                f"benchmark_{system}.tsv", (f"rnn_hmm_{system}", {"corpus": corpus}), **work)
    return jobs


def speech_corpora(config: Mapping) -> list[tuple[str, str, tuple[int, int]]]:
    """(corpus wildcard, corpus kind "fsdd" or "timit", (training, dev) utterances) of every corpus the speech rules
    train on under ``config``: FSDD, each fold of the TIMIT sample (rnn_hmm.timit_sample_folds),
    and TIMIT when data.timit_path is set (as workflow/rules/rnn_hmm.smk)."""
    data, rh = config["data"], config["rnn_hmm"]
    fsdd = data["fsdd"]["utterances"]
    out = [("fsdd", "fsdd", (fsdd["train"], fsdd["dev"]))]
    sample = data["timit_sample"]
    per_speaker = TIMIT_SAMPLE_SENTENCES - (2 if sample["drop_sa"] else 0)
    test_speakers = TIMIT_SAMPLE_SPEAKERS // sample["folds"]
    fold = ((TIMIT_SAMPLE_SPEAKERS - test_speakers - TIMIT_SAMPLE_DEV_SPEAKERS) * per_speaker,
            TIMIT_SAMPLE_DEV_SPEAKERS * per_speaker)
    folds = rh["timit_sample_folds"]
    out += [(f"timit_sample_fold{k}", "timit", fold)
            for k in (range(sample["folds"]) if folds is None else folds)]
    if data.get("timit_path"):
        out.append(("timit", "timit", UTTERANCES["timit"]))
    return out


def project(config: Mapping, rates: Mapping[str, dict]) -> list[dict]:
    """Each job of ``protocol`` with ``seconds`` (one seed) and the basis of its rates."""
    out = []
    for job in protocol(config):
        missing = [k for k in job["work"] if k not in rates]
        seconds = None if missing else job["startup"] + sum(w * rates[k]["s_per_flop"] for k, w in job["work"].items())
        basis = "no benchmark row for " + ", ".join(missing) if missing else rates[next(iter(job["work"]))]["basis"]
        out.append({**job, "seconds": seconds, "basis": basis})
    return out


def measured_seconds(job: Mapping, root: str | Path = ".") -> tuple[float, int] | None:
    """Wall seconds of the first seed's run of this job, when the rule has run, and how many epochs
    before a resume they include: its benchmark_<stage>.tsv times the last invocation only, so the
    epochs its log_<stage>.txt says were trained before a resume are added."""
    path = Path(root) / job["benchmark"].format(seed=job["seeds"][0])
    seconds = benchmark_seconds(path) if path.exists() else []
    if not seconds:
        return None
    earlier = resumed_epoch_seconds(path.with_name(path.name.replace("benchmark", "log", 1)).with_suffix(".txt"))
    return seconds[0] + sum(earlier), len(earlier)


def benchmark_seconds(path: str | Path) -> list[float]:
    """The wall seconds (column ``s``) of each row of a Snakemake benchmark.tsv."""
    with open(path, newline="") as f:
        return [float(row["s"]) for row in csv.DictReader(f, delimiter="\t")]


def report_lines(projections: list[dict], root: str | Path = ".", pending_only: bool = False) -> list[str]:
    """One line per job (projection beside the measured benchmark.tsv, if any) and a total per paper."""
    lines, totals = [], {}
    for p in projections:
        measured = measured_seconds(p, root)
        if pending_only and measured is not None:
            continue
        seeds = len(p["seeds"])
        total = None if p["seconds"] is None else p["seconds"] * seeds
        if total is not None:
            totals[p["paper"]] = totals.get(p["paper"], 0.0) + total
        line = f"  {p['rule']:46s} projected {duration(p['seconds']):>8s} per seed x {seeds}"
        if measured is not None:
            seconds, resumed = measured
            source = p["benchmark"].format(seed=p["seeds"][0])
            if resumed:
                source += f" + {resumed} epochs before a resume, from the log"
            line += f"; measured {duration(seconds)} ({source})"
        lines.append(line)
    lines += [f"  total {paper}: {duration(t)}" for paper, t in totals.items()]
    return lines


def pending_projections(projections: list[dict], jobs: Iterable[tuple[str, Mapping]]) -> list[dict]:
    """The projections of the snakemake jobs about to run ((rule name, wildcards) each, one per seed);
    ``seeds`` becomes the seeds those jobs run."""
    out = []
    for p in projections:
        rule, wildcards = p["match"]
        seeds = [w.get("seed", "?") for name, w in jobs
                 if name == rule and all(str(w.get(k)) == str(v) for k, v in wildcards.items())]
        if seeds:
            out.append({**p, "seeds": seeds})
    return out


def onstart_message(config: Mapping, table: str | Path = "reports/tables/benchmarks.csv",
                    jobs: Iterable[tuple[str, Mapping]] | None = None) -> str:
    """What snakemake prints at start: the projected time of the training jobs about to run (``jobs``:
    (rule name, wildcards) of each; None: every training rule not yet benchmarked here)."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    rates, basis = table_and_quick_rates(table, device, same_device=True)
    projections = project(config, rates)
    if jobs is not None:
        projections = pending_projections(projections, list(jobs))
    lines = report_lines(projections, pending_only=jobs is None) if projections else ["  (no training job to run)"]
    return (f"dlgm: projected wall time of the training jobs about to run, on this {device} ({basis}; "
            f"not included: {NOT_PROJECTED}):\n" + "\n".join(lines))


def table_and_quick_rates(table: str | Path, device: str | None, same_device: bool) -> tuple[dict[str, dict], str]:
    """The rates of a benchmarks.csv (if it exists and, with ``same_device``, was timed on this kind
    of device), the quick estimate on ``device`` for every loop the table lacks (an older table);
    and their basis in words."""
    table_rates = rates_from_table(table) if Path(table).exists() else {}
    if same_device and table_rates and not next(iter(table_rates.values()))["device"].startswith(device):
        table_rates = {}
    quick = quick_rates(device)
    basis = next(iter(quick.values()))["basis"]
    if table_rates:
        lacking = sorted(set(quick) - set(table_rates))
        basis = next(iter(table_rates.values()))["basis"] + (f"; {basis} for {', '.join(lacking)}" if lacking else "")
    return {**quick, **table_rates}, basis
