"""NLTK's TIMIT sample (16 TRAIN speakers of LDC93S1) as speaker-disjoint cross-validation folds.

The sample has one woman and one man from each of TIMIT's 8 dialect regions, 10 sentences each
(2 SA, 3 SI, 5 SX). It is split by speaker, never by utterance. With women and men each sorted by
dialect region, fold k tests the women of block k and the men of block k+1 (blocks of 8 / n
speakers of one sex, n = data.timit_sample.folds, counted cyclically), so a dialect region's woman and man are never
tested together and every region is heard in every fold's training set. Each fold's dev pair
(early stopping) is taken from the other speakers: the first woman of block k+2 and the first
man of block k+3. With 4 folds each fold has 4 test speakers (2 women, 2 men), 2 dev speakers
and 10 training speakers. The SA sentences (the same two texts read by every speaker) are dropped
as in the standard recipe, unless data.timit_sample.drop_sa is false: kept, a test speaker's SA
sentences would repeat word for word sentences of the training set. No other sentence text is
shared by two speakers of the sample.

Every fold is written like data/processed/timit (dlgm.data.timit): 61 phones, phone_times,
frame_phones, the 61->39 folding in meta.json, features normalised with the fold's training
statistics.
"""
from __future__ import annotations

import logging
import tarfile
import tempfile
from pathlib import Path
from typing import Mapping

from dlgm.data.speech import SPLITS, FeatureConfig, write_corpus
from dlgm.data.timit import columns, list_corpus, phone_meta, read_phone_map, read_utterance

log = logging.getLogger("dlgm")

DEFAULTS = {"folds": 4, "drop_sa": True}
LICENSE = ("Copyright 1993 Linguistic Data Consortium; distributed by NLTK under the Creative Commons "
           "Attribution, Non-Commercial, ShareAlike license")


def speaker_folds(dialects: Mapping[str, str], folds: int) -> list[dict[str, list[str]]]:
    """Per fold, {"train", "dev", "test"} speaker lists (sorted) from speaker -> dialect region.

    A speaker's sex is the first letter of its id (f/m). See the module docstring for the rule.
    """
    women = sorted((d, s) for s, d in dialects.items() if s[:1] == "f")
    men = sorted((d, s) for s, d in dialects.items() if s[:1] == "m")
    others = sorted(s for s in dialects if s[:1] not in ("f", "m"))
    if others:
        raise ValueError(f"speaker ids must start with f or m (the speaker's sex): {others}")
    if len(women) != len(men) or folds < 3 or len(women) % folds:
        raise ValueError(f"data.timit_sample.folds = {folds}: need at least 3 folds, each with the same number "
                         f"of women and of men, from {len(women)} women and {len(men)} men")
    size = len(women) // folds
    block = lambda people, k: [s for _, s in people[(k % folds) * size: (k % folds + 1) * size]]
    assignment = []
    for k in range(folds):
        test = block(women, k) + block(men, k + 1)
        dev = [block(women, k + 2)[0], block(men, k + 3)[0]]
        train = [s for s in dialects if s not in test and s not in dev]
        assignment.append({"train": sorted(train), "dev": sorted(dev), "test": sorted(test)})
    return assignment


def resolve_params(params: Mapping | None) -> dict:
    params = dict(params or {})
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown data.timit_sample setting(s): {sorted(unknown)} (have {sorted(DEFAULTS)})")
    return {**DEFAULTS, **params}


def prepare_timit_sample(source: str | Path, meta_dir: str | Path, out_dir: str | Path,
                         params: Mapping | None = None, feature_params: Mapping | None = None) -> dict:
    """Write ``out_dir``/fold<k>/{train,dev,test}.pt, meta.json, counts.json; return {fold<k>: counts}.

    ``source`` is the sample's archive (timit_sample.tar.gz) or a folder holding the corpus in
    NLTK's or LDC's layout; ``meta_dir`` holds phones.60-48-39.map.
    """
    cfg = FeatureConfig.from_params(feature_params)
    settings = resolve_params(params)
    phones, fold48, fold39 = read_phone_map(Path(meta_dir) / "phones.60-48-39.map")
    index = {p: i for i, p in enumerate(phones)}
    source = Path(source)
    with tempfile.TemporaryDirectory(prefix="timit_sample_") as tmp:
        root = source
        if source.is_file():
            root = Path(tmp)
            with tarfile.open(source, "r:*") as tar:
                # the "data" filter refuses absolute paths, links out of the folder and device files
                tar.extractall(root, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        utterances = [u for u in list_corpus(root, label=str(source))
                      if not (settings["drop_sa"] and u.sentence.startswith("sa"))]
        items = {u.utt_id: read_utterance(u, index, cfg) for u in utterances}
    dialects = {u.speaker: u.dialect for u in utterances}
    assignment = speaker_folds(dialects, settings["folds"])
    log.info("timit_sample: %d utterances of %d speakers from %s", len(items), len(dialects), source)
    counts = {}
    for k, speakers in enumerate(assignment):
        splits, feats = {}, {}
        for split in SPLITS:
            chosen = [items[u.utt_id] for u in utterances if u.speaker in speakers[split]]
            splits[split], feats[split] = columns(chosen)
        meta = {
            "source": "NLTK's TIMIT corpus sample: 16 TRAIN speakers of LDC93S1, 10 sentences each",
            "license": LICENSE,
            **phone_meta(phones, fold48, fold39, {rate for _, _, rate in items.values()}),
            "fold": k,
            "folds": assignment,
            "settings": settings,
            "dialects": {s: dialects[s] for s in sorted(dialects)},
            "speakers": {split: speakers[split] for split in SPLITS},
        }
        counts[f"fold{k}"] = write_corpus(Path(out_dir) / f"fold{k}", "timit_sample", splits, feats, meta, cfg)
    return counts
