"""Write files so that a reader sees either the complete file or nothing; read tensor files safely.

Every output of the pipeline goes through these helpers: write to a unique temporary name in the
target's folder, then rename (atomic on POSIX). A crash leaves no partial file behind.

Tensor files (models, checkpoints, processed data) hold only tensors, numbers, strings and
containers of them, and are read with ``weights_only=True``: a model file from a shared run folder
or from reference/ can never run code when opened.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    """Save ``obj`` atomically; refuses anything but tensors, plain values and containers of them."""
    import torch

    _check_plain(obj, str(path))
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def torch_load(path: str | os.PathLike) -> Any:
    """Load a file written by ``torch_save`` onto the CPU without unpickling arbitrary objects."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line or "Unsupported global" in line]
        raise ValueError(f"{path}: holds more than tensors and plain values, refusing to load it "
                         f"({found[0] if found else 'not a plain tensor file'})") from None


_PLAIN = (str, int, float, bool, type(None), bytes)


def _check_plain(obj: Any, where: str) -> None:
    import torch

    if isinstance(obj, (torch.Tensor, torch.Size, torch.dtype, *_PLAIN)):
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            _check_plain(key, where)
            _check_plain(value, f"{where}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_plain(value, f"{where}[{i}]")
    else:
        raise TypeError(f"{where}: cannot save a {type(obj).__name__} in a tensor file "
                        "(only tensors, numbers, strings and lists/tuples/dicts of them)")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
