"""Read NIST SPHERE audio (TIMIT's .wav files), and RIFF wav for converted copies of TIMIT.

A SPHERE file starts with a text header: ``NIST_1A``, the header size in bytes (1024 for TIMIT),
then ``name -type value`` lines up to ``end_head``. The samples follow the header. TIMIT's are
16-bit PCM with ``sample_byte_format`` ``01`` (little-endian) or ``10`` (big-endian); a
``sample_coding`` containing ``shorten`` means the samples are compressed and must first be
expanded with sph2pipe.
"""
from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np


class SphereError(ValueError):
    """A SPHERE file this reader cannot decode; the message names the file."""


def parse_header(raw: bytes, path: str | Path = "<bytes>") -> tuple[dict[str, str | int | float], int]:
    """(fields, header size) of a SPHERE file's header; values typed by their -i/-r/-sN tag."""
    if not raw.startswith(b"NIST_1A"):
        raise SphereError(f"{path}: not a NIST SPHERE file (no NIST_1A magic)")
    lines = raw[:1024].split(b"\n")
    try:
        size = int(lines[1].strip())
    except (IndexError, ValueError) as err:
        raise SphereError(f"{path}: bad SPHERE header size line") from err
    if size < 16 or size > len(raw):
        raise SphereError(f"{path}: SPHERE header size {size} does not fit a {len(raw)}-byte file")
    fields: dict[str, str | int | float] = {}
    for line in raw[:size].split(b"\n")[2:]:
        text = line.decode("ascii", errors="replace").strip()
        if text == "end_head":
            return fields, size
        if not text or text.startswith(";"):
            continue
        parts = text.split(None, 2)
        if len(parts) < 3:
            raise SphereError(f"{path}: malformed SPHERE header line {text!r}")
        name, kind, value = parts
        if kind == "-i":
            fields[name] = int(value)
        elif kind == "-r":
            fields[name] = float(value)
        elif kind.startswith("-s"):
            fields[name] = value[: int(kind[2:])] if kind[2:].isdigit() else value
        else:
            raise SphereError(f"{path}: unknown SPHERE field type {kind!r} in {text!r}")
    raise SphereError(f"{path}: SPHERE header has no end_head within {size} bytes")


def read_sphere(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples as float32 in 16-bit units, sample rate) of a 16-bit PCM SPHERE or RIFF file."""
    raw = Path(path).read_bytes()
    if raw.startswith(b"RIFF"):
        return _read_riff(raw, path)
    fields, size = parse_header(raw, path)
    coding = str(fields.get("sample_coding", "pcm"))
    if "shorten" in coding or coding not in ("pcm", "linear"):
        raise SphereError(f"{path}: sample_coding {coding!r} is compressed or not PCM; expand it first, e.g. "
                          f"`sph2pipe -f wav {Path(path).name} out.wav` (or `sph2pipe -f sph`), then point "
                          "data.timit_path at the expanded copy")
    width = int(fields.get("sample_n_bytes", 2))
    channels = int(fields.get("channel_count", 1))
    if width != 2 or channels != 1:
        raise SphereError(f"{path}: expected mono 16-bit samples, got {channels} channel(s) of {width} byte(s)")
    order = str(fields.get("sample_byte_format", "01"))
    if order not in ("01", "10"):
        raise SphereError(f"{path}: unsupported sample_byte_format {order!r} (expected 01 or 10)")
    if "sample_rate" not in fields:
        raise SphereError(f"{path}: SPHERE header has no sample_rate")
    data = raw[size:]
    count = int(fields.get("sample_count", len(data) // 2))
    if count * 2 > len(data):
        raise SphereError(f"{path}: header says {count} samples but only {len(data) // 2} follow (truncated?)")
    samples = np.frombuffer(data, dtype="<i2" if order == "01" else ">i2", count=count)
    return samples.astype(np.float32), int(fields["sample_rate"])


def _read_riff(raw: bytes, path: str | Path) -> tuple[np.ndarray, int]:
    try:
        with wave.open(io.BytesIO(raw)) as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise SphereError(f"{path}: expected mono 16-bit wav")
            data = wav.readframes(wav.getnframes())
            return np.frombuffer(data, dtype="<i2").astype(np.float32), wav.getframerate()
    except wave.Error as err:
        raise SphereError(f"{path}: unreadable RIFF wav: {err}") from err
