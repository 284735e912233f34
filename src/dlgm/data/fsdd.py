"""Connected-digit utterances built from the Free Spoken Digit Dataset (FSDD v1.0.10).

FSDD holds isolated digits (6 speakers x 10 digits x 50 takes, 8 kHz mono 16-bit wav named
``recordings/{digit}_{speaker}_{take}.wav``). An utterance here concatenates 2-7 recordings of ONE
speaker, each trimmed of its leading/trailing silence, with short silences between them and at
both ends. Everything is drawn from a numpy generator seeded with ``(seed, split index)``, so the
same config gives the same utterances and one split's size does not change another split.

Trimming: the recording is cut into 10 ms frames; leading and trailing frames whose RMS is more
than ``trim_db`` dB below the loudest frame are dropped. Silences are Gaussian noise at the
utterance's noise floor (the smallest 10 ms frame RMS among its recordings, at least 1.0 in 16-bit
units) so that they look like the recordings' own background rather than digital zero.
"""
from __future__ import annotations

import csv
import io
import logging
import re
import tarfile
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from dlgm.data.speech import SPLITS, FeatureConfig, load_lexicon, speech_features, words_to_phones, write_corpus

log = logging.getLogger("dlgm")

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SAMPLE_RATE = 8000
_NAME = re.compile(r"(?:.*/)?(\d)_([A-Za-z]+)_(\d+)\.wav$")
_TRIM_FRAME_MS = 10


@dataclass(frozen=True)
class FsddConfig:
    seed: int = 0
    speakers: Mapping[str, list] = field(default_factory=lambda: {
        "train": ["george", "jackson", "lucas", "nicolas"], "dev": ["theo"], "test": ["yweweler"]})
    utterances: Mapping[str, int] = field(default_factory=lambda: {"train": 800, "dev": 100, "test": 100})
    min_digits: int = 2
    max_digits: int = 7
    trim_db: float = 30.0
    gap_ms: tuple = (100.0, 300.0)
    edge_ms: tuple = (100.0, 300.0)

    @classmethod
    def from_params(cls, params: Mapping) -> "FsddConfig":
        params = dict(params)
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown data.fsdd setting(s): {sorted(unknown)}")
        cfg = cls(**params)
        cfg.check()
        return cfg

    def check(self) -> None:
        for key in ("speakers", "utterances"):
            value = getattr(self, key)
            if set(value) != set(SPLITS):
                raise ValueError(f"data.fsdd.{key} must name exactly the splits {list(SPLITS)}, got {sorted(value)}")
        seen: dict[str, str] = {}
        for split in SPLITS:
            if not self.speakers[split]:
                raise ValueError(f"data.fsdd.speakers.{split} is empty")
            for spk in self.speakers[split]:
                if spk in seen:
                    raise ValueError(f"data.fsdd.speakers: {spk!r} is in both {seen[spk]} and {split}")
                seen[spk] = split
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(f"data.fsdd: need 1 <= min_digits <= max_digits, got {self.min_digits}, {self.max_digits}")
        for key in ("gap_ms", "edge_ms"):
            lo, hi = getattr(self, key)
            if not 0 <= lo <= hi:
                raise ValueError(f"data.fsdd.{key} must be [low, high] with 0 <= low <= high, got {[lo, hi]}")


def read_speakers(path: str | Path) -> list[str]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or "speaker" not in rows[0]:
        raise ValueError(f"{path}: expected a tab-separated table with a 'speaker' column")
    return [row["speaker"] for row in rows]


def _read_wav(data: bytes, name: str) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getframerate() != SAMPLE_RATE or wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{name}: expected 8 kHz mono 16-bit PCM, got {wav.getframerate()} Hz, "
                             f"{wav.getnchannels()} channel(s), {8 * wav.getsampwidth()}-bit")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32)


def read_recordings(archive: str | Path) -> dict[tuple[str, int, int], np.ndarray]:
    """(speaker, digit, take) -> samples (float32 in 16-bit units) for every wav of the archive."""
    found = {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            match = _NAME.match(member.name)
            if not member.isfile() or not match:
                continue
            digit, speaker, take = int(match[1]), match[2], int(match[3])
            found[(speaker, digit, take)] = _read_wav(tar.extractfile(member).read(), f"{archive}:{member.name}")
    if not found:
        raise ValueError(f"{archive}: no recordings named {{digit}}_{{speaker}}_{{take}}.wav found")
    return found


def frame_rms(samples: np.ndarray, frame: int) -> np.ndarray:
    n = max(len(samples) // frame, 1)
    padded = np.zeros(n * frame, np.float64)
    padded[: min(len(samples), n * frame)] = samples[: n * frame]
    return np.sqrt(np.mean(padded.reshape(n, frame) ** 2, axis=1))


def trim_silence(samples: np.ndarray, trim_db: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Drop leading/trailing 10 ms frames more than ``trim_db`` dB below the loudest frame."""
    frame = sample_rate * _TRIM_FRAME_MS // 1000
    rms = frame_rms(samples, frame)
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-trim_db / 20))
    if len(loud) == 0:  # an all-zero recording: keep as is
        return samples
    return samples[loud[0] * frame: min((loud[-1] + 1) * frame, len(samples))]


def noise_floor(recordings: list[np.ndarray], sample_rate: int = SAMPLE_RATE) -> float:
    frame = sample_rate * _TRIM_FRAME_MS // 1000
    return max(1.0, min(float(frame_rms(r, frame).min()) for r in recordings))


def _silence(rng: np.random.Generator, span_ms, level: float) -> np.ndarray:
    n = int(round(rng.uniform(*span_ms) * SAMPLE_RATE / 1000))
    return (rng.standard_normal(n) * level).astype(np.float32)


def compose_split(recordings, cfg: FsddConfig, split: str, split_index: int):
    """The utterances of one split: lists of utt_ids, speakers, words, sources and the audio."""
    rng = np.random.default_rng([cfg.seed, split_index])
    speakers = list(cfg.speakers[split])
    pools = {spk: sorted(key for key in recordings if key[0] == spk) for spk in speakers}
    for spk, pool in pools.items():
        if not pool:
            raise ValueError(f"data.fsdd.speakers.{split}: speaker {spk!r} has no recordings in the archive")
    queues = {spk: [] for spk in speakers}
    out = {"utt_ids": [], "speakers": [], "words": [], "sources": []}
    audio = []
    for i in range(cfg.utterances[split]):
        spk = speakers[i % len(speakers)]  # round robin keeps the speakers balanced
        n = int(rng.integers(cfg.min_digits, cfg.max_digits + 1))
        keys = []
        while len(keys) < n:  # each recording is used once before any is reused
            if not queues[spk]:
                queues[spk] = [pools[spk][j] for j in rng.permutation(len(pools[spk]))]
            keys.append(queues[spk].pop())
        clips = [recordings[key] for key in keys]
        level = noise_floor(clips)
        parts = [_silence(rng, cfg.edge_ms, level)]
        for j, clip in enumerate(clips):
            if j:
                parts.append(_silence(rng, cfg.gap_ms, level))
            parts.append(clip)
        parts.append(_silence(rng, cfg.edge_ms, level))
        audio.append(np.concatenate(parts))
        digits = "".join(str(key[1]) for key in keys)
        out["utt_ids"].append(f"{split}_{spk}_{i:05d}_{digits}")
        out["speakers"].append(spk)
        out["words"].append([DIGIT_WORDS[key[1]] for key in keys])
        out["sources"].append([f"{key[1]}_{key[0]}_{key[2]}.wav" for key in keys])
    return out, audio


def prepare_fsdd(archive: str | Path, speakers_tsv: str | Path, out_dir: str | Path,
                 params: Mapping, feature_params: Mapping | None = None) -> dict:
    """Build, featurise and write the FSDD connected-digit corpus; return its counts."""
    cfg = FsddConfig.from_params(params)
    feat_cfg = FeatureConfig.from_params(feature_params)
    known = read_speakers(speakers_tsv)
    for split in SPLITS:
        for spk in cfg.speakers[split]:
            if spk not in known:
                raise ValueError(f"data.fsdd.speakers.{split}: unknown speaker {spk!r} "
                                 f"(speakers in {speakers_tsv}: {', '.join(known)})")
    lexicon = load_lexicon()
    missing = [w for w in DIGIT_WORDS if w not in lexicon]
    if missing:
        raise ValueError(f"the digit lexicon lacks {missing}")
    raw = read_recordings(archive)
    log.info("read %d recordings from %s", len(raw), archive)
    trimmed = {key: trim_silence(x, cfg.trim_db) for key, x in raw.items()}
    kept = sum(len(x) for x in trimmed.values()) / max(sum(len(x) for x in raw.values()), 1)
    log.info("trimmed silence at %.0f dB below each recording's peak: %.1f%% of samples kept", cfg.trim_db, 100 * kept)
    splits, feats = {}, {}
    for index, split in enumerate(SPLITS):
        data, audio = compose_split(trimmed, cfg, split, index)
        data["phones"] = [words_to_phones(words, lexicon) for words in data["words"]]
        splits[split] = data
        feats[split] = [speech_features(x, SAMPLE_RATE, feat_cfg) for x in audio]
    inventory = sorted({p for phones in lexicon.values() for p in phones} | {"sil"})
    meta = {
        "source": "Free Spoken Digit Dataset v1.0.10 (github.com/Jakobovski/free-spoken-digit-dataset)",
        "sample_rate": SAMPLE_RATE,
        "phones": inventory,
        "lexicon": {w: lexicon[w] for w in DIGIT_WORDS},
        "words": list(DIGIT_WORDS),
        "speakers": {split: list(cfg.speakers[split]) for split in SPLITS},
        "source_counts": {"recordings": len(raw), "speakers": len({key[0] for key in raw}),
                          "digits": len({key[1] for key in raw}), "takes": len({key[2] for key in raw})},
        "construction": {"seed": cfg.seed, "utterances": dict(cfg.utterances), "min_digits": cfg.min_digits,
                         "max_digits": cfg.max_digits, "trim_db": cfg.trim_db, "gap_ms": list(cfg.gap_ms),
                         "edge_ms": list(cfg.edge_ms), "fraction_of_samples_kept_by_trim": round(kept, 4)},
    }
    return write_corpus(out_dir, "fsdd", splits, feats, meta, feat_cfg)
