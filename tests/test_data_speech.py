"""Speech data: fbank/delta front end, SPHERE reader, FSDD connected digits, TIMIT recipe reader."""
from __future__ import annotations

import io
import json
import tarfile
import wave

import numpy as np
import pytest
import torch

from conftest import copy_pipeline, require_mirror, snakemake
from dlgm.cli import main as cli_main
from dlgm.data import fsdd, speech, sphere, timit
from timit_fixture import (EXPECTED_COUNTS, EXPECTED_SPEAKERS, make_timit_tree, read_fixture_phones,
                                 sphere_bytes, timit_meta_dir)

CFG = speech.FeatureConfig()
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


# ---- front end -------------------------------------------------------------------------------

def test_deltas_match_the_regression_formula_with_edge_frames_repeated():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(9, 3))
    want = np.zeros_like(c)
    for t in range(len(c)):
        for n in (1, 2):
            want[t] += n * (c[min(t + n, len(c) - 1)] - c[max(t - n, 0)])
    want /= 10.0
    np.testing.assert_allclose(speech.deltas(c, 2), want, rtol=1e-12)
    ramp = np.arange(20, dtype=np.float64)[:, None] * 0.5  # slope 0.5 per frame
    assert np.allclose(speech.deltas(ramp, 2)[2:-2], 0.5)


def test_fbank_is_123_dims_with_log_energy_in_column_40():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1000, size=16000).astype(np.float32)
    feats = speech.speech_features(x, 16000, CFG)
    assert feats.shape == (1 + (16000 - 400) // 160, 123) and feats.dtype == np.float32
    frame = x[160 * 7: 160 * 7 + 400].astype(np.float64)
    raw_energy = np.log(np.sum((frame - frame.mean()) ** 2))  # Kaldi: before pre-emphasis, after DC removal
    assert feats[7, 40] == pytest.approx(raw_energy, abs=1e-3)
    np.testing.assert_allclose(feats[:, 41:82], speech.deltas(feats[:, :41]), atol=1e-5)
    np.testing.assert_allclose(feats[:, 82:], speech.deltas(speech.deltas(feats[:, :41])), atol=1e-4)
    eight_k = speech.speech_features(x[:8000], 8000, CFG)
    assert eight_k.shape == (1 + (8000 - 200) // 80, 123)  # the window follows the sample rate


def test_norm_stats_are_those_of_all_frames_concatenated():
    rng = np.random.default_rng(2)
    feats = [rng.normal(3, 2, size=(n, 5)).astype(np.float32) for n in (4, 17, 9)]
    mean, std = speech.norm_stats(feats)
    allf = np.concatenate(feats).astype(np.float64)
    np.testing.assert_allclose(mean, allf.mean(0), rtol=1e-10)
    np.testing.assert_allclose(std, allf.std(0), rtol=1e-8)


def test_lexicon_is_the_ten_digits_in_lower_case_arpabet_without_stress():
    lex = speech.load_lexicon()
    assert sorted(lex) == sorted(DIGITS)
    assert lex["seven"] == ["s", "eh", "v", "ah", "n"] and lex["zero"] == ["z", "ih", "r", "ow"]
    timit61 = timit.read_phone_map(timit_meta_dir() / "phones.60-48-39.map")[0]
    for phones in lex.values():
        assert all(p.islower() and p.isalpha() and p in timit61 for p in phones)
    assert speech.words_to_phones(["two", "eight"], lex) == ["sil", "t", "uw", "sil", "ey", "t", "sil"]


# ---- SPHERE ------------------------------------------------------------------------------------

@pytest.mark.parametrize("big_endian", [False, True])
def test_sphere_reader_handles_both_byte_orders(tmp_path, big_endian):
    samples = np.array([0, 1, -2, 300, -32768, 32767, 258], dtype=np.int16)
    path = tmp_path / "x.wav"
    path.write_bytes(sphere_bytes(samples, "x", big_endian=big_endian))
    fields, size = sphere.parse_header(path.read_bytes())
    assert size == 1024 and fields["sample_byte_format"] == ("10" if big_endian else "01")
    got, rate = sphere.read_sphere(path)
    assert rate == 16000 and got.tolist() == samples.tolist()


def test_sphere_reader_rejects_shorten_truncated_and_foreign_files(tmp_path):
    samples = np.arange(100, dtype=np.int16)
    shortened = tmp_path / "short.wav"
    shortened.write_bytes(sphere_bytes(samples, "s", coding="pcm,embedded-shorten-v2.00"))
    with pytest.raises(sphere.SphereError, match="sph2pipe") as err:
        sphere.read_sphere(shortened)
    assert "short.wav" in str(err.value)
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(sphere_bytes(samples, "c")[:1024 + 50])
    with pytest.raises(sphere.SphereError, match="truncated"):
        sphere.read_sphere(truncated)
    other = tmp_path / "other.wav"
    other.write_bytes(b"hello world" * 200)
    with pytest.raises(sphere.SphereError, match="NIST"):
        sphere.read_sphere(other)


# ---- TIMIT -------------------------------------------------------------------------------------

def test_phone_map_folds_61_phones_to_39_and_deletes_q():
    phones, fold48, fold39 = timit.read_phone_map(timit_meta_dir() / "phones.60-48-39.map")
    assert len(phones) == 61 and len({p for p in fold39.values() if p}) == 39
    assert len({p for p in fold48.values() if p}) == 48
    assert fold39["q"] is None and fold39["ao"] == "aa" and fold39["h#"] == "sil" and fold39["pcl"] == "sil"


@pytest.fixture(scope="module")
def timit_out(tmp_path_factory):
    root = make_timit_tree(tmp_path_factory.mktemp("timit") / "LDC93S1")
    out = tmp_path_factory.mktemp("timit_out")
    counts = timit.prepare_timit(root, timit_meta_dir(), out)
    return root, out, counts


def test_timit_recipe_split_counts_and_speakers(timit_out):
    root, out, counts = timit_out
    assert {s: c["utterances"] for s, c in counts.items()} == EXPECTED_COUNTS
    meta = json.loads((out / "meta.json").read_text())
    assert {s: set(v) for s, v in meta["speakers"].items()} == EXPECTED_SPEAKERS
    assert json.loads((out / "counts.json").read_text()) == counts
    for split in speech.SPLITS:
        data = torch.load(out / f"{split}.pt")
        assert not any(u.split("_")[1].startswith("sa") for u in data["utt_ids"])  # SA sentences dropped
        assert set(data["speakers"]) == EXPECTED_SPEAKERS[split]


def test_timit_labels_and_frame_phones(timit_out):
    root, out, _ = timit_out
    meta = json.loads((out / "meta.json").read_text())
    data = torch.load(out / "train.pt")
    for utt, phones, feats, frames in zip(data["utt_ids"], data["phones"], data["feats"], data["frame_phones"]):
        speaker, sentence = utt.split("_")
        assert phones == read_fixture_phones(root, speaker, sentence)
        times = data["phone_times"][data["utt_ids"].index(utt)]
        assert times.shape == (len(phones), 2) and times[0, 0] == 0 and bool((times[1:, 0] == times[:-1, 1]).all())
        assert feats.shape[1] == 123 and frames.dtype == torch.int64 and len(frames) == len(feats)
        labels = [meta["phones"][i] for i in frames.tolist()]
        assert labels[0] == "h#" and labels[-1] == "h#"
        # the frame labels visit the utterance's phones in order (segments may be skipped if short)
        runs = [p for k, p in enumerate(labels) if k == 0 or labels[k - 1] != p]
        remaining = iter(phones)
        assert all(p in remaining for p in runs), (utt, runs, phones)
    segs = [(0, 500, "h#"), (500, 1000, "s"), (1000, 1200, "iy"), (1200, 3000, "h#")]
    index = {"h#": 0, "s": 1, "iy": 2}
    got = timit.frame_labels(segs, num_frames=4, length=400, shift=160, index=index).tolist()
    # frame centres 200, 360, 520, 680 -> h#, h#, s, s
    assert got == [0, 0, 1, 1]
    got = timit.frame_labels(segs, num_frames=8, length=400, shift=160, index=index).tolist()
    # centres 840, 1000, 1160 -> s, iy (1000 starts iy), iy; 1320 -> h#
    assert got[4:] == [1, 2, 2, 0]


def test_timit_normalisation_uses_training_statistics_only(timit_out):
    _, out, _ = timit_out
    feats = {s: torch.cat(torch.load(out / f"{s}.pt")["feats"]) for s in speech.SPLITS}
    assert feats["train"].mean(0).abs().max() < 1e-4
    assert (feats["train"].std(0, unbiased=False) - 1).abs().max() < 1e-3
    for split in ("dev", "test"):
        assert (feats[split].mean(0).abs().max() > 1e-3) or ((feats[split].std(0) - 1).abs().max() > 1e-3)
    meta = json.loads((out / "meta.json").read_text())
    assert len(meta["norm"]["mean"]) == 123 and meta["features"]["dim"] == 123


def test_timit_lower_case_tree_gives_the_same_utterances(tmp_path, timit_out):
    _, out, counts = timit_out
    root = make_timit_tree(tmp_path / "timit", upper=False)
    lower = timit.prepare_timit(root, timit_meta_dir(), tmp_path / "out")
    assert lower == counts
    a, b = torch.load(out / "dev.pt"), torch.load(tmp_path / "out" / "dev.pt")
    assert a["utt_ids"] == b["utt_ids"] and all(torch.equal(x, y) for x, y in zip(a["feats"], b["feats"]))


def test_timit_bad_path_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_timit"):
        timit.prepare_timit(tmp_path / "no_such_timit", timit_meta_dir(), tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="TRAIN/ and TEST/"):
        timit.prepare_timit(tmp_path / "empty", timit_meta_dir(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---- FSDD --------------------------------------------------------------------------------------

def _wav(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def fake_fsdd(tmp_path_factory):
    """3 speakers x 10 digits x 3 takes: a tone (frequency by digit) between 50 ms of near silence."""
    folder = tmp_path_factory.mktemp("fsdd")
    rng = np.random.default_rng(0)
    archive = folder / "recordings.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for speaker in ("ann", "bob", "cid"):
            for digit in range(10):
                for take in range(3):
                    t = np.arange(int(8000 * rng.uniform(0.2, 0.4))) / 8000
                    tone = 4000 * np.sin(2 * np.pi * (300 + 100 * digit) * t)
                    quiet = lambda: rng.normal(0, 3, 400)  # noqa: E731
                    data = _wav(np.concatenate([quiet(), tone, quiet()]))
                    info = tarfile.TarInfo(f"recordings/{digit}_{speaker}_{take}.wav")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    speakers = folder / "speakers.tsv"
    speakers.write_text("speaker\tgender\taccent\tlanguage\nann\tf\tx\ten\nbob\tm\tx\ten\ncid\tm\tx\ten\n")
    return archive, speakers


def _params(**changes):
    params = {"seed": 3, "speakers": {"train": ["ann"], "dev": ["cid"], "test": ["bob"]},
              "utterances": {"train": 12, "dev": 5, "test": 4}}
    params.update(changes)
    return params


def test_trim_silence_cuts_to_the_loud_part():
    x = np.concatenate([np.full(800, 2.0), 1000 * np.sin(np.arange(1600)), np.full(400, 2.0)]).astype(np.float32)
    y = fsdd.trim_silence(x, trim_db=30)
    assert len(y) == 1600 and np.array_equal(y, x[800:2400])
    assert len(fsdd.trim_silence(x, trim_db=80)) == len(x)  # 2.0 is only ~54 dB below the tone


def test_fsdd_utterances_follow_the_config_and_lexicon(fake_fsdd, tmp_path):
    archive, speakers = fake_fsdd
    counts = fsdd.prepare_fsdd(archive, speakers, tmp_path, _params())
    assert {s: c["utterances"] for s, c in counts.items()} == {"train": 12, "dev": 5, "test": 4}
    lex = speech.load_lexicon()
    seen = {}
    for split in speech.SPLITS:
        data = torch.load(tmp_path / f"{split}.pt")
        seen[split] = set(data["speakers"])
        for words, phones, sources, spk, feats in zip(data["words"], data["phones"], data["sources"],
                                                      data["speakers"], data["feats"]):
            assert 2 <= len(words) <= 7
            assert phones == speech.words_to_phones(words, lex)
            assert [DIGITS[int(s.split("_")[0])] for s in sources] == words
            assert {s.split("_")[1] for s in sources} == {spk}  # one speaker per utterance
            assert feats.shape[1] == 123 and feats.dtype == torch.float32
    assert seen == {"train": {"ann"}, "dev": {"cid"}, "test": {"bob"}}
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["lexicon"]["nine"] == ["n", "ay", "n"] and "sil" in meta["phones"]
    train = torch.cat(torch.load(tmp_path / "train.pt")["feats"])
    assert train.mean(0).abs().max() < 1e-4 and (train.std(0, unbiased=False) - 1).abs().max() < 1e-3
    dev = torch.cat(torch.load(tmp_path / "dev.pt")["feats"])
    assert dev.mean(0).abs().max() > 1e-3
    train_raw_mean = np.asarray(meta["norm"]["mean"])
    assert train_raw_mean.shape == (123,) and np.isfinite(train_raw_mean).all()


def test_fsdd_same_seed_same_utterances_other_seed_differs(fake_fsdd, tmp_path):
    archive, speakers = fake_fsdd
    fsdd.prepare_fsdd(archive, speakers, tmp_path / "a", _params())
    fsdd.prepare_fsdd(archive, speakers, tmp_path / "b", _params())
    fsdd.prepare_fsdd(archive, speakers, tmp_path / "c", _params(seed=4))
    a, b, c = (torch.load(tmp_path / name / "dev.pt") for name in "abc")
    assert a["utt_ids"] == b["utt_ids"] and a["sources"] == b["sources"]
    assert all(torch.equal(x, y) for x, y in zip(a["feats"], b["feats"]))
    assert a["sources"] != c["sources"]


def test_fsdd_reuses_no_recording_before_all_are_used(fake_fsdd, tmp_path):
    archive, speakers = fake_fsdd
    fsdd.prepare_fsdd(archive, speakers, tmp_path, _params(utterances={"train": 6, "dev": 5, "test": 2}))
    sources = [s for utt in torch.load(tmp_path / "train.pt")["sources"] for s in utt]
    assert len(sources) >= 12
    assert len(set(sources[:30])) == min(len(sources), 30)  # ann has 30 recordings


@pytest.mark.parametrize("change, message", [
    ({"speakers": {"train": ["ann"], "dev": ["ann"], "test": ["bob"]}}, "'ann' is in both train and dev"),
    ({"speakers": {"train": ["zed"], "dev": ["cid"], "test": ["bob"]}}, "unknown speaker 'zed'"),
    ({"min_digits": 5, "max_digits": 3}, "min_digits"),
    ({"colour": 1}, "colour"),
])
def test_fsdd_bad_config_names_the_key(fake_fsdd, tmp_path, change, message):
    archive, speakers = fake_fsdd
    with pytest.raises(ValueError, match=message):
        fsdd.prepare_fsdd(archive, speakers, tmp_path / "out", _params(**change))
    assert not (tmp_path / "out").exists()


def test_prepare_fsdd_command_writes_every_output(fake_fsdd, tmp_path):
    archive, speakers = fake_fsdd
    params = json.dumps({"fsdd": _params(), "features": {"num_mel_bins": 40}})
    cli_main(["data", "prepare-fsdd", "--archive", str(archive), "--speakers", str(speakers),
              "--out", str(tmp_path), "--params", params])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.json", "dev.pt", "meta.json", "test.pt", "train.pt"]


# ---- rules -------------------------------------------------------------------------------------

def test_prepare_fsdd_rule_on_the_mirror_with_the_smoke_config(tmp_path):
    require_mirror()
    workdir = copy_pipeline(tmp_path / "wf")
    snakemake(workdir, "data/processed/fsdd/counts.json", "--cores", "2", "--configfile", "config/smoke.yaml")
    out = workdir / "data" / "processed" / "fsdd"
    counts = json.loads((out / "counts.json").read_text())
    smoke = __import__("yaml").safe_load((workdir / "config" / "smoke.yaml").read_text())
    assert {s: c["utterances"] for s, c in counts.items()} == smoke["data"]["fsdd"]["utterances"]
    meta = json.loads((out / "meta.json").read_text())
    speakers = [set(meta["speakers"][s]) for s in speech.SPLITS]
    assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])
    assert meta["features"]["dim"] == 123 and len(meta["norm"]["std"]) == 123
    # the mirror's SOURCE.md: 3,000 files = 6 speakers x 10 digits x 50 takes
    assert meta["source_counts"] == {"recordings": 3000, "speakers": 6, "digits": 10, "takes": 50}


def test_prepare_timit_rule_exists_only_when_timit_path_is_set(tmp_path):
    workdir = copy_pipeline(tmp_path / "wf")
    root = make_timit_tree(tmp_path / "TIMIT")
    target = "data/processed/timit/counts.json"
    proc = snakemake(workdir, "-n", target, "--config", f"data={{'timit_path': '{root}'}}")
    assert "prepare_timit" in proc.stdout
    proc = snakemake(workdir, "-n", target, check=False)
    assert proc.returncode != 0 and "No rule to produce" in proc.stdout + proc.stderr
    missing = tmp_path / "no_timit_here"
    proc = snakemake(workdir, "-n", target, "--config", f"data={{'timit_path': '{missing}'}}", check=False)
    assert proc.returncode != 0 and f"data.timit_path '{missing}' is not a directory" in proc.stdout + proc.stderr
