"""TIMIT (LDC93S1) reader and the standard recipe split (as in Kaldi's egs/timit/s5).

Two layouts are read (any letter case). LDC's: ``TRAIN/`` and ``TEST/`` (possibly one level down,
in ``TIMIT/``), each holding ``DR1..DR8/<speaker>/<sentence>.{WAV,PHN,WRD,TXT}``. NLTK's (its TIMIT
sample): ``dr1-fvmh0/sa1.{wav,phn,wrd,txt}`` folders, possibly in ``timit/``; whether a speaker is
a TRAIN or TEST speaker then comes from ``spkrinfo.txt`` beside them ("unknown" without it).
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
import re
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
_NLTK_SPEAKER = re.compile(r"dr[1-8]-[fm][a-z]{3}[0-9]")  # NLTK's folder name: dialect region, speaker
COLUMNS = ("utt_ids", "speakers", "phones", "words", "frame_phones", "phone_times")  # per-utterance lists


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


def _ldc_dirs(root: Path) -> dict[str, Path] | None:
    """{"train": TRAIN dir, "test": TEST dir} under ``root`` (or ``root/TIMIT``, ``root/data``), any case."""
    for base in (root, _child(root, "timit"), _child(root, "data")):
        if base is None or not base.is_dir():
            continue
        train, test = _child(base, "train"), _child(base, "test")
        if train is not None and test is not None and train.is_dir() and test.is_dir():
            return {"train": train, "test": test}
    return None


def _speaker_use(spkrinfo: Path) -> dict[str, str]:
    """speaker ("fvmh0") -> "train" or "test" from TIMIT's spkrinfo.txt (ID Sex DR Use ...), if present."""
    if not spkrinfo.is_file():
        return {}
    use = {}
    for line in spkrinfo.read_text(errors="replace").splitlines():
        cols = line.split()
        if len(cols) >= 4 and not line.startswith(";") and cols[3] in ("TRN", "TST"):
            use[cols[1].lower() + cols[0].lower()] = "train" if cols[3] == "TRN" else "test"
    return use


def list_corpus(root: str | Path, label: str = "data.timit_path") -> list[Utterance]:
    """Every sentence of a TIMIT tree in LDC's layout or NLTK's (see the module docstring), sorted.

    ``label`` names where ``root`` came from in error messages.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{label} {str(root)!r} is not a directory; set it to a local LDC93S1 "
                                "copy holding TRAIN/ and TEST/")
    dirs = _ldc_dirs(root)
    if dirs is not None:
        return list_utterances(dirs["train"], "train") + list_utterances(dirs["test"], "test")
    for base in (root, _child(root, "timit")):
        if base is None or not base.is_dir():
            continue
        folders = sorted((p for p in base.iterdir() if p.is_dir() and _NLTK_SPEAKER.fullmatch(p.name.lower())),
                         key=lambda p: p.name.lower())
        if folders:
            use = _speaker_use(base / "spkrinfo.txt")
            found = []
            for folder in folders:
                dialect, speaker = folder.name.lower().split("-")
                found += _speaker_sentences(folder, use.get(speaker, "unknown"), dialect, speaker)
            return found
    raise FileNotFoundError(f"{label} {str(root)!r} holds no TRAIN/ and TEST/ folders (LDC93S1 layout: "
                            "TRAIN/DR1/FCJF0/SI1027.WAV with .PHN, .WRD, .TXT beside it) and no speaker "
                            "folders in NLTK's layout (dr1-fvmh0/sa1.wav)")


def _speaker_sentences(folder: Path, split_dir: str, dialect: str, speaker: str) -> list[Utterance]:
    """The sentences in one speaker's folder that have .wav, .phn and .wrd, sorted by name."""
    groups: dict[str, dict] = {}
    for file in folder.iterdir():
        name = file.name.lower()
        ext = next((e for e in _EXTENSIONS if name.endswith(e)), None)
        if ext is None or not file.is_file():
            continue
        stem = name.split(".")[0]  # SA1.WAV, sa1.wav and converted SA1.WAV.wav all give sa1
        groups.setdefault(stem, {}).setdefault(ext, file)
    found = []
    for stem, files in sorted(groups.items()):
        missing = [e for e in _EXTENSIONS[:3] if e not in files]
        if missing:
            raise FileNotFoundError(f"{folder}: sentence {stem} lacks {', '.join(missing)}")
        found.append(Utterance(split_dir, dialect, speaker, stem, files))
    return found


def list_utterances(corpus_dir: Path, split_dir: str) -> list[Utterance]:
    """Every sentence under ``corpus_dir``/DRn/<speaker>/ (LDC layout) with .wav/.phn/.wrd present, sorted."""
    found = []
    for dialect in sorted(p for p in corpus_dir.iterdir() if p.is_dir()):
        for speaker in sorted(p for p in dialect.iterdir() if p.is_dir()):
            found += _speaker_sentences(speaker, split_dir, dialect.name.lower(), speaker.name.lower())
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


def read_utterance(utt: Utterance, phone_index: Mapping[str, int],
                   cfg: FeatureConfig) -> tuple[dict, np.ndarray, int]:
    """(one value per COLUMNS key, unnormalised features, sample rate) of one sentence."""
    samples, rate = read_sphere(utt.files[".wav"])
    feats = speech_features(samples, rate, cfg)
    phn = read_segments(utt.files[".phn"])
    unknown = sorted({label for _, _, label in phn if label not in phone_index})
    if unknown:
        raise ValueError(f"{utt.files['.phn']}: phones not in the 61-phone map: {unknown}")
    length, shift = cfg.frame_samples(rate)
    record = {
        "utt_ids": utt.utt_id,
        "speakers": utt.speaker,
        "phones": [label for _, _, label in phn],
        "words": [label for _, _, label in read_segments(utt.files[".wrd"])],
        "frame_phones": frame_labels(phn, len(feats), length, shift, phone_index),
        "phone_times": torch.tensor([[start, end] for start, end, _ in phn], dtype=torch.int64),
    }
    return record, feats, rate


def columns(items: list[tuple[dict, np.ndarray, int]]) -> tuple[dict[str, list], list[np.ndarray]]:
    """A split's per-utterance lists (the <split>.pt layout) and feature matrices from read_utterance items."""
    return {key: [record[key] for record, _, _ in items] for key in COLUMNS}, [feats for _, feats, _ in items]


def phone_meta(phones: list[str], fold48: Mapping, fold39: Mapping, rates: set[int]) -> dict:
    """The meta.json entries every TIMIT-format corpus shares (phone inventory, folding, sample rate)."""
    return {
        "sample_rate": sorted(rates)[0] if len(rates) == 1 else sorted(rates),
        "phones": phones,
        "phones48": sorted({p for p in fold48.values() if p}),
        "phones39": sorted({p for p in fold39.values() if p}),
        "fold_61_48": dict(fold48),
        "fold_61_39": dict(fold39),
        "frame_phones": "index into 'phones' of the phone holding each frame's centre sample",
        "phone_times": "per phone [start, end) in samples, from the .phn file",
    }


def prepare_timit(timit_path: str | Path, meta_dir: str | Path, out_dir: str | Path,
                  feature_params: Mapping | None = None) -> dict:
    """Read the TIMIT tree, split it by the standard recipe, featurise and write; return counts."""
    cfg = FeatureConfig.from_params(feature_params)
    meta_dir = Path(meta_dir)
    phones, fold48, fold39 = read_phone_map(meta_dir / "phones.60-48-39.map")
    dev_speakers = read_speaker_list(meta_dir / "dev_spk.list")
    test_speakers = read_speaker_list(meta_dir / "test_spk.list")
    chosen = recipe_split(list_corpus(timit_path), dev_speakers, test_speakers)
    for split in SPLITS:
        if not chosen[split]:
            raise ValueError(f"data.timit_path {str(timit_path)!r}: the {split} split is empty (check the layout "
                             "and the speaker lists in timit_meta)")
    index = {p: i for i, p in enumerate(phones)}
    items = {split: [read_utterance(utt, index, cfg) for utt in chosen[split]] for split in SPLITS}
    splits, feats = {}, {}
    for split in SPLITS:
        splits[split], feats[split] = columns(items[split])
    counts_found = {split: len(chosen[split]) for split in SPLITS}
    if counts_found != STANDARD_COUNTS:
        log.warning("TIMIT utterance counts %s differ from the standard recipe's %s (a partial corpus?)",
                    counts_found, STANDARD_COUNTS)
    meta = {
        "source": "TIMIT Acoustic-Phonetic Continuous Speech Corpus (LDC93S1), user-supplied",
        **phone_meta(phones, fold48, fold39, {rate for split in SPLITS for _, _, rate in items[split]}),
        "standard_counts": STANDARD_COUNTS,
        "speakers": {split: sorted(set(splits[split]["speakers"])) for split in SPLITS},
    }
    return write_corpus(out_dir, "timit", splits, feats, meta, cfg)
