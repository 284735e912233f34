"""A small TIMIT-format tree for tests (real SPHERE headers, .phn/.wrd/.txt files, synthetic audio).

``make_timit_tree(root)`` writes TRAIN/ and TEST/ with a few speakers each:
  TRAIN/DR1/FTRN0, TRAIN/DR2/MTRN1          training speakers (MTRN1's audio is big-endian)
  TEST/DR1/MDAB0                             a core-test speaker (first in test_spk.list)
  TEST/DR1/FAKS0                             a dev speaker (first in dev_spk.list)
  TEST/DR2/MXTR0                             a test speaker in neither list (the recipe drops it)
Each speaker has SA1 (dropped by the recipe) and SENTENCES_PER_SPEAKER SI/SX sentences. Each
sentence is h#, a few phones, h#; each phone is a tone at its own frequency plus a little noise.
``timit_meta_dir()`` is the real Kaldi speaker lists and phone map from the data mirror.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
SPEAKERS = {  # speaker dir -> (corpus dir, dialect dir, big-endian samples)
    "FTRN0": ("TRAIN", "DR1", False),
    "MTRN1": ("TRAIN", "DR2", True),
    "MDAB0": ("TEST", "DR1", False),
    "FAKS0": ("TEST", "DR1", False),
    "MXTR0": ("TEST", "DR2", False),
}
SENTENCES_PER_SPEAKER = 3  # plus SA1
EXPECTED_COUNTS = {"train": 2 * SENTENCES_PER_SPEAKER, "dev": SENTENCES_PER_SPEAKER, "test": SENTENCES_PER_SPEAKER}
EXPECTED_SPEAKERS = {"train": {"ftrn0", "mtrn1"}, "dev": {"faks0"}, "test": {"mdab0"}}
PHONES = ["aa", "iy", "s", "sh", "n", "m", "pau", "q", "ix", "dcl", "d"]
WORDS = ["she", "had", "your", "dark", "suit", "in", "greasy", "wash", "water"]


def timit_meta_dir() -> Path:
    """The data mirror's timit_meta folder (DLGM_DATA_MIRROR, default ../shared/data from the repo)."""
    repo = Path(__file__).resolve().parents[1]
    mirror = Path(os.environ.get("DLGM_DATA_MIRROR", "../shared/data"))
    return (mirror if mirror.is_absolute() else repo / mirror) / "timit_meta"


def sphere_bytes(samples: np.ndarray, utterance_id: str, big_endian: bool = False,
                 coding: str | None = None) -> bytes:
    """A 1024-byte NIST_1A header as in TIMIT, then 16-bit samples in the given byte order."""
    fields = [
        ("database_id", "-s5", "TIMIT"),
        ("database_version", "-s3", "1.0"),
        ("utterance_id", f"-s{len(utterance_id)}", utterance_id),
        ("channel_count", "-i", "1"),
        ("sample_count", "-i", str(len(samples))),
        ("sample_rate", "-i", str(SAMPLE_RATE)),
        ("sample_min", "-i", str(int(samples.min()))),
        ("sample_max", "-i", str(int(samples.max()))),
        ("sample_n_bytes", "-i", "2"),
        ("sample_byte_format", "-s2", "10" if big_endian else "01"),
        ("sample_sig_bits", "-i", "16"),
    ]
    if coding:
        fields.append(("sample_coding", f"-s{len(coding)}", coding))
    text = "NIST_1A\n   1024\n" + "".join(f"{n} {t} {v}\n" for n, t, v in fields) + "end_head\n"
    header = text.encode("ascii").ljust(1024, b" ")
    return header + samples.astype(">i2" if big_endian else "<i2").tobytes()


def _sentence(rng: np.random.Generator):
    """(int16 samples, phone segments, word segments) of one synthetic sentence."""
    labels = ["h#"] + list(rng.choice(PHONES, size=int(rng.integers(4, 8)))) + ["h#"]
    lengths = rng.integers(800, 2400, size=len(labels))
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    t = np.arange(bounds[-1]) / SAMPLE_RATE
    audio = rng.normal(0, 30, size=len(t))
    for k, label in enumerate(labels):
        if label != "h#":
            seg = slice(bounds[k], bounds[k + 1])
            audio[seg] += 3000 * np.sin(2 * np.pi * (200 + 150 * PHONES.index(label)) * t[seg])
    phones = [(int(bounds[k]), int(bounds[k + 1]), label) for k, label in enumerate(labels)]
    middle = phones[1:-1]
    cut = len(middle) // 2
    words = [(middle[0][0], middle[cut - 1][1], str(rng.choice(WORDS))),
             (middle[cut][0], middle[-1][1], str(rng.choice(WORDS)))]
    return np.clip(audio, -32768, 32767).astype(np.int16), phones, words


def make_timit_tree(root: str | Path, seed: int = 0, upper: bool = True) -> Path:
    """Write the tree under ``root`` (names upper case as on the LDC disc, or lower) and return root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    case = str.upper if upper else str.lower
    for speaker, (corpus, dialect, big_endian) in SPEAKERS.items():
        folder = root / case(corpus) / case(dialect) / case(speaker)
        folder.mkdir(parents=True, exist_ok=True)
        names = ["SA1"] + [f"SI{1000 + k}" if k % 2 else f"SX{100 + k}" for k in range(SENTENCES_PER_SPEAKER)]
        for name in names:
            samples, phones, words = _sentence(rng)
            base = folder / case(name)
            utt_id = f"{speaker[1:].lower()}_{name.lower()}"
            base.with_suffix(case(".wav")).write_bytes(sphere_bytes(samples, utt_id, big_endian))
            base.with_suffix(case(".phn")).write_text("".join(f"{s} {e} {p}\n" for s, e, p in phones))
            base.with_suffix(case(".wrd")).write_text("".join(f"{s} {e} {w}\n" for s, e, w in words))
            text = " ".join(w for _, _, w in words).capitalize() + "."
            base.with_suffix(case(".txt")).write_text(f"0 {len(samples)} {text}\n")
    return root


def read_fixture_phones(root: str | Path, speaker: str, sentence: str) -> list[str]:
    """The phone labels the fixture wrote for one sentence (for checking what the reader returns)."""
    for path in Path(root).rglob("*"):
        if path.parent.name.lower() == speaker.lower() and path.name.lower() == f"{sentence.lower()}.phn":
            return [line.split()[2] for line in path.read_text().splitlines() if line.strip()]
    raise FileNotFoundError(f"{speaker}/{sentence}.phn")
