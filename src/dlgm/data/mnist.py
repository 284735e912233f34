"""MNIST: read the IDX files, write train / valid / train_full / test tensors and their counts."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from dlgm.atomic import torch_load, torch_save, write_json

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
_MAGIC = {0x0801: 1, 0x0803: 3}  # unsigned-byte IDX with 1 (labels) or 3 (images) dimensions


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An unsigned-byte IDX file (gzipped or not) as a numpy array; errors name the file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    magic = int.from_bytes(data[:4], "big")
    if magic not in _MAGIC:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic number {magic:#010x})")
    ndim = _MAGIC[magic]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but {len(data) - offset} bytes follow")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def load_split(images_path, labels_path) -> dict[str, torch.Tensor]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{images_path} ({images.shape}) and {labels_path} ({labels.shape}) do not pair up")
    if labels.max() > 9:
        raise ValueError(f"{labels_path}: label {labels.max()} outside 0-9")
    return {
        "images": torch.from_numpy(images.reshape(len(images), -1).copy()),
        "labels": torch.from_numpy(labels.astype(np.int64)),
    }


def load_processed(path: str | os.PathLike, device, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A processed split as (images float32 [N, 784] in [0, 1], labels int64 [N]) on ``device``;
    ``limit`` keeps the first N. Errors name the file."""
    path = Path(path)
    try:
        blob = torch_load(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: processed MNIST split not found (rule prepare_mnist makes it)") from None
    except (OSError, RuntimeError) as err:
        raise ValueError(f"{path}: not a processed MNIST split ({err})") from err
    for key in ("images", "labels"):
        if key not in blob:
            raise ValueError(f"{path}: missing key {key!r} (expected images uint8 [N,784], labels int64 [N])")
    images, labels = blob["images"], blob["labels"]
    if images.dim() != 2 or images.shape[1] != 784:
        raise ValueError(f"{path}: images have shape {tuple(images.shape)}, expected [N, 784]")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{path}: {images.shape[0]} images but {labels.shape[0]} labels")
    if limit is not None:
        if limit > images.shape[0]:
            raise ValueError(f"{path}: asked for {limit} images, the split has {images.shape[0]}")
        images, labels = images[:limit], labels[:limit]
    return (images.float() / 255.0).to(device), labels.long().to(device)


def split_counts(split: dict[str, torch.Tensor]) -> dict:
    return {
        "n": len(split["labels"]),
        "label_counts": torch.bincount(split["labels"], minlength=10).tolist(),
    }


def prepare_mnist(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, valid_size: int = 10000) -> dict:
    """train = the first ``60000 - valid_size`` training images, valid = the rest (as Hinton et al.
    2006 hold out 10,000), train_full = all 60,000, test = the official 10,000."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    train_full = load_split(raw_dir / FILES["train_images"], raw_dir / FILES["train_labels"])
    test = load_split(raw_dir / FILES["test_images"], raw_dir / FILES["test_labels"])
    n = len(train_full["labels"])
    if not 0 < valid_size < n:
        raise ValueError(f"data.mnist_valid_size={valid_size} must be between 1 and {n - 1}")
    cut = n - valid_size
    splits = {
        "train": {key: value[:cut].clone() for key, value in train_full.items()},
        "valid": {key: value[cut:].clone() for key, value in train_full.items()},
        "train_full": train_full,
        "test": test,
    }
    counts = {name: split_counts(split) for name, split in splits.items()}
    for name, split in splits.items():
        torch_save(split, out_dir / f"{name}.pt")
    write_json(out_dir / "counts.json", counts)
    return counts
