"""TIMIT (LDC93S1) reader and the standard recipe split (as in Kaldi's egs/timit/s5).

Layout expected under ``data.timit_path`` (any letter case): ``TRAIN/`` and ``TEST/`` (possibly
one level down, in ``TIMIT/``), each holding ``DR1..DR8/<speaker>/<sentence>.{WAV,PHN,WRD,TXT}``.
Split: train = every TRAIN speaker; dev = the 50 TEST speakers of dev_spk.list; test = the 24
core-test speakers of test_spk.list; the SA sentences are dropped everywhere (giving 3,696 / 400
/ 192 utterances on the full corpus). Phones are TIMIT's 61, with their [start, end) sample times
in ``phone_times``; ``frame_phones[t]`` is the index (in meta.json "phones") of the phone whose
segment contains the centre sample of frame ``t``.
The 61 -> 39 folding (Lee & Hon 1989, Kaldi's phones.60-48-39.map; ``q`` is deleted) goes to
meta.json for scoring.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from dlgm.data.speech import SPLITS, FeatureConfig, speech_features, write_corpus
from dlgm.data.sphere import read_sphere

log = logging.getLogger("dlgm")

STANDARD_COUNTS = {"train": 3696, "dev": 400, "test": 192}
_EXTENSIONS = (".wav", ".phn", ".wrd", ".txt")


@dataclass(frozen=True)
class Utterance:
    split_dir: str  # "train" or "test" (the corpus directory, not the recipe split)
    dialect: str
    speaker: str
    sentence: str
    files: dict  # extension (".wav", ".phn", ...) -> Path

    @property
    def utt_id(self) -> str:
        return f"{self.speaker}_{self.sentence}"


def read_phone_map(path: str | Path) -> tuple[list[str], dict[str, str | None], dict[str, str | None]]:
    """(61 phones in file order, 61->48 map, 61->39 map) from phones.60-48-39.map (None = deleted)."""
    phones, fold48, fold39 = [], {}, {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        cols = line.split()
        if not cols:
            continue
        if len(cols) not in (1, 3):
            raise ValueError(f"{path}:{number}: expected 1 or 3 columns, got {line!r}")
        phones.append(cols[0])
        fold48[cols[0]] = cols[1] if len(cols) == 3 else None
        fold39[cols[0]] = cols[2] if len(cols) == 3 else None
    if len(phones) != 61 or len({p for p in fold39.values() if p}) != 39:
        raise ValueError(f"{path}: expected 61 phones folding to 39 classes, got {len(phones)} phones and "
                         f"{len({p for p in fold39.values() if p})} classes")
    return phones, fold48, fold39


def read_speaker_list(path: str | Path) -> set[str]:
    speakers = {line.strip().lower() for line in Path(path).read_text().splitlines() if line.strip()}
    if not speakers:
        raise ValueError(f"{path}: empty speaker list")
    return speakers


def _child(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` named ``name`` in any letter case."""
    for entry in folder.iterdir():
        if entry.name.lower() == name:
            return entry
    return None


def find_corpus_dirs(root: str | Path) -> dict[str, Path]:
    """{"train": TRAIN dir, "test": TEST dir} under ``root`` (or ``root/TIMIT``), any letter case."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.timit_path {str(root)!r} is not a directory; set it to a local LDC93S1 "
                                "copy holding TRAIN/ and TEST/")
    for base in (root, _child(root, "timit"), _child(root, "data")):
        if base is None or not base.is_dir():
            continue
        train, test = _child(base, "train"), _child(base, "test")
        if train is not None and test is not None and train.is_dir() and test.is_dir():
            return {"train": train, "test": test}
    raise FileNotFoundError(f"data.timit_path {str(root)!r} holds no TRAIN/ and TEST/ folders (LDC93S1 layout: "
                            "TRAIN/DR1/FCJF0/SI1027.WAV with .PHN, .WRD, .TXT beside it)")


def list_utterances(corpus_dir: Path, split_dir: str) -> list[Utterance]:
    """Every sentence under ``corpus_dir``/DRn/<speaker>/ with all four files present, sorted."""
    found = []
    for dialect in sorted(p for p in corpus_dir.iterdir() if p.is_dir()):
        for speaker in sorted(p for p in dialect.iterdir() if p.is_dir()):
            groups: dict[str, dict] = {}
            for file in speaker.iterdir():
                name = file.name.lower()
                ext = next((e for e in _EXTENSIONS if name.endswith(e)), None)
                if ext is None or not file.is_file():
                    continue
                stem = name.split(".")[0]  # SA1.WAV, sa1.wav and converted SA1.WAV.wav all give sa1
                groups.setdefault(stem, {}).setdefault(ext, file)
            for stem, files in sorted(groups.items()):
                missing = [e for e in _EXTENSIONS[:3] if e not in files]
                if missing:
                    raise FileNotFoundError(f"{speaker}: sentence {stem} lacks {', '.join(missing)}")
                found.append(Utterance(split_dir, dialect.name.lower(), speaker.name.lower(), stem, files))
    return found


def read_segments(path: Path) -> list[tuple[int, int, str]]:
    """``start end label`` lines (sample indices) of a .phn or .wrd file."""
    segments = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        cols = line.split()
        if not cols:
            continue
        if len(cols) != 3:
            raise ValueError(f"{path}:{number}: expected 'start end label', got {line!r}")
        segments.append((int(cols[0]), int(cols[1]), cols[2]))
    if not segments:
        raise ValueError(f"{path}: no segments")
    return segments


def frame_labels(segments: list[tuple[int, int, str]], num_frames: int, length: int, shift: int,
                 index: Mapping[str, int]) -> torch.Tensor:
    """Index of the segment label containing each frame's centre sample (clamped to the first/last)."""
    ends = np.array([end for _, end, _ in segments])
    labels = np.array([index[label] for _, _, label in segments], dtype=np.int64)
    centres = np.arange(num_frames) * shift + length // 2
    which = np.minimum(np.searchsorted(ends, centres, side="right"), len(segments) - 1)
    return torch.from_numpy(labels[which])


def recipe_split(utterances: list[Utterance], dev_speakers: set[str], test_speakers: set[str]) -> dict:
    """Standard split: train = TRAIN speakers; dev/test = listed TEST speakers; SA sentences dropped."""
    chosen = {split: [] for split in SPLITS}
    for utt in utterances:
        if utt.sentence.startswith("sa"):
            continue
        if utt.split_dir == "train":
            chosen["train"].append(utt)
        elif utt.speaker in test_speakers:
            chosen["test"].append(utt)
        elif utt.speaker in dev_speakers:
            chosen["dev"].append(utt)
    return chosen


def _load_utterance(utt: Utterance, phone_index: Mapping[str, int], cfg: FeatureConfig):
    samples, rate = read_sphere(utt.files[".wav"])
    feats = speech_features(samples, rate, cfg)
    phn = read_segments(utt.files[".phn"])
    unknown = sorted({label for _, _, label in phn if label not in phone_index})
    if unknown:
        raise ValueError(f"{utt.files['.phn']}: phones not in the 61-phone map: {unknown}")
    length, shift = cfg.frame_samples(rate)
    frames = frame_labels(phn, len(feats), length, shift, phone_index)
    words = [label for _, _, label in read_segments(utt.files[".wrd"])]
    times = torch.tensor([[start, end] for start, end, _ in phn], dtype=torch.int64)
    return feats, [label for _, _, label in phn], words, frames, times, rate


def prepare_timit(timit_path: str | Path, meta_dir: str | Path, out_dir: str | Path,
                  feature_params: Mapping | None = None) -> dict:
    """Read the TIMIT tree, split it by the standard recipe, featurise and write; return counts."""
    cfg = FeatureConfig.from_params(feature_params)
    meta_dir = Path(meta_dir)
    phones, fold48, fold39 = read_phone_map(meta_dir / "phones.60-48-39.map")
    dev_speakers = read_speaker_list(meta_dir / "dev_spk.list")
    test_speakers = read_speaker_list(meta_dir / "test_spk.list")
    dirs = find_corpus_dirs(timit_path)
    utterances = list_utterances(dirs["train"], "train") + list_utterances(dirs["test"], "test")
    chosen = recipe_split(utterances, dev_speakers, test_speakers)
    for split in SPLITS:
        if not chosen[split]:
            raise ValueError(f"data.timit_path {str(timit_path)!r}: the {split} split is empty (check the layout "
                             "and the speaker lists in timit_meta)")
    index = {p: i for i, p in enumerate(phones)}
    splits, feats, rates = {}, {}, set()
    for split in SPLITS:
        data = {"utt_ids": [], "speakers": [], "phones": [], "words": [], "frame_phones": [], "phone_times": []}
        feats[split] = []
        for utt in chosen[split]:
            f, phn, words, frames, times, rate = _load_utterance(utt, index, cfg)
            rates.add(rate)
            feats[split].append(f)
            data["utt_ids"].append(utt.utt_id)
            data["speakers"].append(utt.speaker)
            data["phones"].append(phn)
            data["words"].append(words)
            data["frame_phones"].append(frames)
            data["phone_times"].append(times)
        splits[split] = data
    counts_found = {split: len(chosen[split]) for split in SPLITS}
    if counts_found != STANDARD_COUNTS:
        log.warning("TIMIT utterance counts %s differ from the standard recipe's %s (a partial corpus?)",
                    counts_found, STANDARD_COUNTS)
    meta = {
        "source": "TIMIT Acoustic-Phonetic Continuous Speech Corpus (LDC93S1), user-supplied",
        "sample_rate": sorted(rates)[0] if len(rates) == 1 else sorted(rates),
        "phones": phones,
        "phones48": sorted({p for p in fold48.values() if p}),
        "phones39": sorted({p for p in fold39.values() if p}),
        "fold_61_48": fold48,
        "fold_61_39": fold39,
        "frame_phones": "index into 'phones' of the phone holding each frame's centre sample",
        "phone_times": "per phone [start, end) in samples, from the .phn file",
        "standard_counts": STANDARD_COUNTS,
        "speakers": {split: sorted(set(splits[split]["speakers"])) for split in SPLITS},
    }
    return write_corpus(out_dir, "timit", splits, feats, meta, cfg)
