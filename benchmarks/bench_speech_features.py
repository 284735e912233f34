"""Speech front-end speed on the real FSDD recordings: dlgm vs bare kaldi-native-fbank, same run.

dlgm's ``speech_features`` (40 log mel + energy, deltas, delta-deltas: 123 dims) is timed against
kaldi-native-fbank alone (the 41 static dims, no deltas) on the same audio, alternately, so that
the overhead of the deltas and of the column layout is visible. Then the whole FSDD preparation
(read the archive, trim, compose, featurise, normalise, write) is timed with the full config.
Usage: python -m benchmarks.bench_speech_features [--mirror ../shared/data] [--repeats 3] [--tiny]
(--tiny: 20 recordings, no whole preparation; --device is accepted for uniformity: features run on
the CPU.) Needs the FSDD archive in the mirror, so it is not part of `python -m benchmarks`.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np

from benchmarks.common import parser, setup
from dlgm.data.fsdd import SAMPLE_RATE, prepare_fsdd, read_recordings
from dlgm.data.speech import FeatureConfig, speech_features


def bare_fbank(samples: np.ndarray) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 40
    opts.use_energy = True
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(SAMPLE_RATE, samples)
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


def main(argv=None) -> None:
    p = parser(__doc__)
    p.add_argument("--mirror", default=os.environ.get("DLGM_DATA_MIRROR", "../shared/data"))
    args = p.parse_args(argv)
    setup(args)
    archive = Path(args.mirror) / "fsdd" / "fsdd-v1.0.10-recordings.tar.gz"
    audio = list(read_recordings(archive).values())[: 20 if args.tiny else None]
    frames = sum(len(bare_fbank(x)) for x in audio[:50]) * len(audio) / 50
    cfg = FeatureConfig()
    ours, theirs = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for x in audio:
            speech_features(x, SAMPLE_RATE, cfg)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for x in audio:
            bare_fbank(x)
        theirs.append(time.perf_counter() - t0)
    print(f"{len(audio)} FSDD recordings (~{frames:,.0f} frames), median of {args.repeats}:")
    print(f"  dlgm speech_features (123 dims):       {statistics.median(ours):6.2f} s")
    print(f"  kaldi-native-fbank alone (41 dims):     {statistics.median(theirs):6.2f} s")
    if args.tiny:
        return
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        counts = prepare_fsdd(archive, archive.parent / "speakers.tsv", out, {})
        total = time.perf_counter() - t0
    n = {split: c["utterances"] for split, c in counts.items()}
    print(f"  whole prepare_fsdd, default config {n}: {total:6.2f} s")


if __name__ == "__main__":
    main()
