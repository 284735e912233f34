"""MNIST preparation: the IDX reader on small generated files, and the counts of the real mirror."""
from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import require_mirror
from dlgm.data.mnist import FILES, prepare_mnist, read_idx

# From ../shared/data/mnist/SOURCE.md ("Verified: ...").
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x0800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fake_mnist(folder, n_train=30, n_test=7, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        (folder / FILES[key]).write_bytes(gzip.compress(idx_bytes(array)))
    return arrays


def test_split_layout_on_generated_idx(tmp_path):
    arrays = write_fake_mnist(tmp_path / "raw")
    counts = prepare_mnist(tmp_path / "raw", tmp_path / "out", valid_size=10)
    train, valid = torch.load(tmp_path / "out" / "train.pt"), torch.load(tmp_path / "out" / "valid.pt")
    full, test = torch.load(tmp_path / "out" / "train_full.pt"), torch.load(tmp_path / "out" / "test.pt")
    assert train["images"].dtype == torch.uint8 and train["images"].shape == (20, 784)
    assert train["labels"].dtype == torch.int64
    np.testing.assert_array_equal(full["images"].numpy(), arrays["train_images"].reshape(30, 784))
    np.testing.assert_array_equal(train["labels"].numpy(), arrays["train_labels"][:20])
    np.testing.assert_array_equal(valid["labels"].numpy(), arrays["train_labels"][20:])
    np.testing.assert_array_equal(test["images"].numpy(), arrays["test_images"].reshape(7, 784))
    assert counts == json.loads((tmp_path / "out" / "counts.json").read_text())
    assert counts["valid"]["label_counts"] == np.bincount(arrays["train_labels"][20:], minlength=10).tolist()


def test_bad_idx_files_name_the_file(tmp_path):
    bad = tmp_path / "bad-idx1-ubyte"
    bad.write_bytes(b"\x00\x00\x0d\x03" + bytes(20))
    with pytest.raises(ValueError, match="bad-idx1-ubyte.*magic"):
        read_idx(bad)
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(idx_bytes(np.arange(10))[:-3])
    with pytest.raises(ValueError, match="short-idx1-ubyte.*10 bytes"):
        read_idx(short)


def test_mismatched_pair_and_bad_valid_size(tmp_path):
    write_fake_mnist(tmp_path / "raw")
    (tmp_path / "raw" / FILES["test_labels"]).write_bytes(gzip.compress(idx_bytes(np.zeros(3))))
    with pytest.raises(ValueError, match="do not pair up"):
        prepare_mnist(tmp_path / "raw", tmp_path / "out")
    write_fake_mnist(tmp_path / "raw")
    with pytest.raises(ValueError, match="mnist_valid_size"):
        prepare_mnist(tmp_path / "raw", tmp_path / "out", valid_size=30)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.pt"))


def test_real_mnist_counts_match_source_md(tmp_path):
    mirror = require_mirror()
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in FILES.values():
        shutil.copy(mirror / "mnist" / name, raw / name)
    counts = prepare_mnist(raw, tmp_path / "out")
    assert counts["train_full"] == {"n": 60000, "label_counts": TRAIN_LABEL_COUNTS}
    assert counts["test"] == {"n": 10000, "label_counts": TEST_LABEL_COUNTS}
    assert counts["train"]["n"] == 50000 and counts["valid"]["n"] == 10000
    summed = np.add(counts["train"]["label_counts"], counts["valid"]["label_counts"]).tolist()
    assert summed == TRAIN_LABEL_COUNTS
    train = torch.load(tmp_path / "out" / "train.pt")
    assert train["labels"][:10].tolist() == FIRST_TRAIN_LABELS
    assert int(train["images"].max()) == 255 and int(train["images"].min()) == 0
