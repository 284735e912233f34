"""Speech front end shared by FSDD and TIMIT: filterbank features, deltas, normalisation, output.

Features follow Graves, Jaitly & Mohamed (2013), section 4: 40 log mel filterbank coefficients
plus log energy (41), with their first and second temporal differences: 123 dimensions.
Column layout of every feature matrix: 0-39 log mel, 40 log energy, 41-81 deltas of those,
82-122 delta-deltas. Frames are 25 ms long every 10 ms (kaldi-native-fbank, snip_edges, no
dither so the output is deterministic); frame ``t`` covers samples ``[t*shift, t*shift+length)``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import kaldi_native_fbank as knf
import numpy as np
import torch

from dlgm.atomic import torch_save, write_json

log = logging.getLogger("dlgm")

SPLITS = ("train", "dev", "test")
SILENCE = "sil"


@dataclass(frozen=True)
class FeatureConfig:
    num_mel_bins: int = 40
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    delta_window: int = 2

    @classmethod
    def from_params(cls, params: Mapping | None) -> "FeatureConfig":
        params = dict(params or {})
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown speech feature setting(s): {sorted(unknown)}")
        return cls(**params)

    @property
    def dim(self) -> int:
        return 3 * (self.num_mel_bins + 1)

    def frame_samples(self, sample_rate: int) -> tuple[int, int]:
        """(window length, shift) in samples at ``sample_rate``."""
        return (round(sample_rate * self.frame_length_ms / 1000),
                round(sample_rate * self.frame_shift_ms / 1000))

    def num_frames(self, num_samples: int, sample_rate: int) -> int:
        length, shift = self.frame_samples(sample_rate)
        return 0 if num_samples < length else 1 + (num_samples - length) // shift


def log_mel_energy(samples: np.ndarray, sample_rate: int, cfg: FeatureConfig) -> np.ndarray:
    """[T, num_mel_bins + 1] float32: log mel filterbank then log energy (16-bit sample scale)."""
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(sample_rate)
    opts.frame_opts.frame_length_ms = cfg.frame_length_ms
    opts.frame_opts.frame_shift_ms = cfg.frame_shift_ms
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = cfg.num_mel_bins
    opts.use_energy = True
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(float(sample_rate), np.ascontiguousarray(samples, dtype=np.float32))
    fbank.input_finished()
    n = fbank.num_frames_ready
    if n == 0:
        return np.zeros((0, cfg.num_mel_bins + 1), np.float32)
    frames = np.stack([fbank.get_frame(i) for i in range(n)]).astype(np.float32)
    return np.concatenate([frames[:, 1:], frames[:, :1]], axis=1)  # kaldi puts energy first


def deltas(feats: np.ndarray, window: int = 2) -> np.ndarray:
    """Regression deltas d_t = sum_n n (c_{t+n} - c_{t-n}) / (2 sum_n n^2), n = 1..window.

    The standard HTK/Kaldi formula; frames beyond either end repeat the edge frame.
    """
    if len(feats) == 0:
        return feats.copy()
    padded = np.concatenate([np.repeat(feats[:1], window, 0), feats, np.repeat(feats[-1:], window, 0)])
    t = len(feats)
    out = np.zeros_like(feats, dtype=np.float64)
    for n in range(1, window + 1):
        out += n * (padded[window + n: window + n + t] - padded[window - n: window - n + t])
    return (out / (2 * sum(n * n for n in range(1, window + 1)))).astype(feats.dtype)


def speech_features(samples: np.ndarray, sample_rate: int, cfg: FeatureConfig) -> np.ndarray:
    """[T, 3 * (num_mel_bins + 1)] float32: static, delta and delta-delta coefficients."""
    static = log_mel_energy(samples, sample_rate, cfg)
    d1 = deltas(static, cfg.delta_window)
    d2 = deltas(d1, cfg.delta_window)
    return np.concatenate([static, d1, d2], axis=1)


def norm_stats(feats: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation over every frame of ``feats`` (float64 sums)."""
    total = sum(len(f) for f in feats)
    if total == 0:
        raise ValueError("cannot compute normalisation statistics: the training split has no frames")
    s1 = sum(f.sum(0, dtype=np.float64) for f in feats)
    s2 = sum(np.square(f, dtype=np.float64).sum(0) for f in feats)
    mean = s1 / total
    std = np.sqrt(np.maximum(s2 / total - mean**2, 0.0))
    return mean, np.maximum(std, 1e-5)


def normalise(feats: Sequence[np.ndarray], mean: np.ndarray, std: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(((f - mean) / std).astype(np.float32)) for f in feats]


def load_lexicon(path: str | Path | None = None) -> dict[str, list[str]]:
    """word -> phones from the digit lexicon (default: the packaged CMUdict 0.7b excerpt)."""
    if path is None:
        text = resources.files("dlgm").joinpath("resources", "digits_cmudict.txt").read_text()
        where = "dlgm/resources/digits_cmudict.txt"
    else:
        text, where = Path(path).read_text(), str(path)
    lexicon: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, *phones = line.split()
        if not phones:
            raise ValueError(f"{where}:{number}: word {word!r} has no phones")
        lexicon[word] = phones
    return lexicon


def words_to_phones(words: Sequence[str], lexicon: Mapping[str, Sequence[str]]) -> list[str]:
    """Phones of a word sequence with ``sil`` at both ends and between words."""
    phones = [SILENCE]
    for word in words:
        phones += list(lexicon[word]) + [SILENCE]
    return phones


def write_corpus(out_dir: str | Path, corpus: str, splits: Mapping[str, dict], raw_feats: Mapping[str, list],
                 meta: dict, cfg: FeatureConfig) -> dict:
    """Normalise with training statistics, then write ``<split>.pt``, meta.json and counts.json.

    ``splits[name]`` holds the per-utterance lists (utt_ids, speakers, phones, words, ...);
    ``raw_feats[name]`` the unnormalised feature matrices in the same order.
    """
    out_dir = Path(out_dir)
    mean, std = norm_stats(raw_feats["train"])
    counts = {}
    for name in SPLITS:
        data = dict(splits[name])
        data["feats"] = normalise(raw_feats[name], mean, std)
        frames = sum(len(f) for f in raw_feats[name])
        counts[name] = {
            "utterances": len(data["utt_ids"]),
            "speakers": len(set(data["speakers"])),
            "frames": frames,
            "hours": round(frames * cfg.frame_shift_ms / 3.6e6, 4),
            "phones": sum(len(p) for p in data["phones"]),
            "words": sum(len(w) for w in data["words"]),
        }
        torch_save(data, out_dir / f"{name}.pt")
        log.info("%s %s: %d utterances, %d speakers, %d frames", corpus, name,
                 counts[name]["utterances"], counts[name]["speakers"], frames)
    meta = dict(meta, corpus=corpus, counts=counts,
                features={"dim": cfg.dim, "num_mel_bins": cfg.num_mel_bins,
                          "frame_length_ms": cfg.frame_length_ms, "frame_shift_ms": cfg.frame_shift_ms,
                          "delta_window": cfg.delta_window,
                          "layout": f"0-{cfg.num_mel_bins - 1} log mel, {cfg.num_mel_bins} log energy, "
                                    f"then their deltas and delta-deltas",
                          "normalisation": "per-dimension mean/std of the training split"},
                norm={"mean": mean.tolist(), "std": std.tolist()})
    write_json(out_dir / "meta.json", meta)
    write_json(out_dir / "counts.json", counts)
    return counts
