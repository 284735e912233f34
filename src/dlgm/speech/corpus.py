"""The speech corpora as the recognisers see them: phone ids, features on the device, graphs, scoring.

Reads the data layer's ``<split>.pt`` and ``meta.json`` (FSDD connected digits, or TIMIT) and
builds what the three systems share: decoding graphs (phone loop with a training-set phone
bigram; for FSDD also the digit loop) and the scoring rules (TIMIT: 61 phones folded to 39;
FSDD: phones without silence, and digits).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dlgm.atomic import torch_load

from dlgm.hmm.graph import bigram, loop_graph
from dlgm.speech.scoring import error_rate, fold

SPLITS = ("train", "dev", "test")
FSDD_SILENCE = "sil"


@dataclass
class Corpus:
    name: str
    phones: list[str]
    splits: dict[str, dict]
    meta: dict
    utterance_cmvn: bool = False
    index: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.index = {p: i for i, p in enumerate(self.phones)}

    @property
    def is_digits(self) -> bool:
        return "lexicon" in self.meta

    @property
    def dim(self) -> int:
        return int(self.splits["train"]["feats"][0].shape[1])

    def phone_ids(self, split: str) -> list[list[int]]:
        try:
            return [[self.index[p] for p in seq] for seq in self.splits[split]["phones"]]
        except KeyError as err:
            raise ValueError(f"{self.name}/{split}.pt: phone {err} is not in meta.json 'phones'") from err

    def feats(self, split: str, device: torch.device) -> list[torch.Tensor]:
        """Features on the device; with ``utterance_cmvn`` each utterance is brought to zero mean and
        unit variance per dimension (removes a recording's gain and channel offset)."""
        out = [f.to(device=device, dtype=torch.float32) for f in self.splits[split]["feats"]]
        if self.utterance_cmvn:
            out = [(f - f.mean(0)) / f.std(0, unbiased=False).clamp_min(1e-3) for f in out]
        return out

    def frame_phones(self, split: str) -> list[torch.Tensor] | None:
        return self.splits[split].get("frame_phones")

    # -- decoding graphs ----------------------------------------------------------------------
    def phone_loop(self, log_self, states_per_phone, lm_scale, insertion_penalty):
        start, big, end = bigram(self.phone_ids("train"), len(self.phones))
        return loop_graph([[p] for p in range(len(self.phones))], log_self, states_per_phone, start, big, end,
                          lm_scale, insertion_penalty)

    def word_units(self) -> tuple[list[str], list[list[int]]]:
        """Digit words and silence as units (phone-id sequences) of the digit-loop grammar."""
        names = list(self.meta["words"]) + [FSDD_SILENCE]
        units = [[self.index[p] for p in self.meta["lexicon"][w]] for w in self.meta["words"]] + [[self.index[FSDD_SILENCE]]]
        return names, units

    def word_unit_sequences(self, split: str) -> list[list[int]]:
        names, _ = self.word_units()
        pos = {n: i for i, n in enumerate(names)}
        sil = pos[FSDD_SILENCE]
        out = []
        for words in self.splits[split]["words"]:
            seq = [sil]
            for w in words:
                seq += [pos[w], sil]
            out.append(seq)
        return out

    def digit_loop(self, log_self, states_per_phone, lm_scale, insertion_penalty):
        names, units = self.word_units()
        start, big, end = bigram(self.word_unit_sequences("train"), len(units))
        return loop_graph(units, log_self, states_per_phone, start, big, end, lm_scale, insertion_penalty)

    # -- scoring ------------------------------------------------------------------------------
    def scored_phones(self, ids: list[int]) -> list[str]:
        names = [self.phones[i] for i in ids]
        if self.is_digits:
            return [p for p in names if p != FSDD_SILENCE]
        return fold(names, self.meta["fold_61_39"])

    def per(self, split: str, hyps: list[list[int]]) -> float:
        refs = [self.scored_phones(r) for r in self.phone_ids(split)]
        return error_rate(refs, [self.scored_phones(h) for h in hyps])

    def der(self, split: str, word_units: list[list[int]]) -> float:
        names, _ = self.word_units()
        hyps = [[names[u] for u in seq if names[u] != FSDD_SILENCE] for seq in word_units]
        return error_rate(self.splits[split]["words"], hyps)


def corpus_files(directory: str | Path) -> list[Path]:
    """The files ``load_corpus`` reads: ``<split>.pt`` of each split, then ``meta.json``."""
    directory = Path(directory)
    return [directory / f"{split}.pt" for split in SPLITS] + [directory / "meta.json"]


def load_corpus(directory: str | Path, utterance_cmvn: bool = False) -> Corpus:
    directory = Path(directory)
    *split_paths, meta_path = corpus_files(directory)
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: missing (run the prepare rule of this corpus first)")
    meta = json.loads(meta_path.read_text())
    splits = {}
    for split, path in zip(SPLITS, split_paths):
        data = torch_load(path)
        for key in ("feats", "phones", "words"):
            if key not in data:
                raise ValueError(f"{path}: no {key!r} entry")
        splits[split] = data
    if "phones" not in meta:
        raise ValueError(f"{meta_path}: no 'phones' inventory")
    return Corpus(name=meta.get("corpus", directory.name), phones=list(meta["phones"]), splits=splits, meta=meta,
                  utterance_cmvn=utterance_cmvn)
