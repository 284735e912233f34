"""Real TIMIT from NLTK's sample (the data mirror's timit_sample/): SPHERE files, hand-aligned phones,
the 61 -> 39 folding, the speaker folds, and the prepared folds end to end.

Expected figures come from the mirror's timit_sample/SOURCE.md (160 files, 7,841,548 samples,
6,185 phone segments, .phn ends up to 2,802 samples before the audio ends).
"""
from __future__ import annotations

import json
import shutil
import tarfile

import numpy as np
import pytest
import torch

from conftest import MIRROR
from dlgm.cli import main as cli_main
from dlgm.data import speech, sphere, timit
from dlgm.data.timit_sample import prepare_timit_sample, speaker_folds
from dlgm.speech.corpus import load_corpus
from dlgm.speech.scoring import fold

pytestmark = pytest.mark.usefixtures("one_thread")
ARCHIVE = MIRROR / "timit_sample" / "timit_sample.tar.gz"
PHONE_MAP = MIRROR / "timit_meta" / "phones.60-48-39.map"
SPEAKERS = ["fvmh0", "mcpm0", "faem0", "marc0", "falk0", "madc0", "falr0", "maeb0",
            "ftlg0", "mbgt0", "fapb0", "mbma1", "fblv0", "madd0", "fbcg1", "mbcg0"]  # dr1, dr1, dr2, ...
DIALECTS = {s: f"dr{1 + i // 2}" for i, s in enumerate(SPEAKERS)}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The extracted sample: the folder holding timit/dr1-fvmh0/... ."""
    if not ARCHIVE.is_file() or not PHONE_MAP.is_file():
        pytest.skip(f"NLTK's TIMIT sample or timit_meta not in the data mirror {MIRROR} (set DLGM_DATA_MIRROR)")
    root = tmp_path_factory.mktemp("timit_sample")
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(root, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return root


@pytest.fixture(scope="module")
def utterances(sample):
    return timit.list_corpus(sample)


def test_nltk_layout_lists_16_train_speakers_with_10_sentences_each(utterances):
    assert len(utterances) == 160
    assert sorted({u.speaker for u in utterances}) == sorted(SPEAKERS)
    assert {u.speaker: u.dialect for u in utterances} == DIALECTS
    assert {u.split_dir for u in utterances} == {"train"}  # spkrinfo.txt: Use = TRN for all 16
    per_speaker = {s: sorted(u.sentence[:2] for u in utterances if u.speaker == s) for s in SPEAKERS}
    assert all(kinds == ["sa"] * 2 + ["si"] * 3 + ["sx"] * 5 for kinds in per_speaker.values())
    first = utterances[0]
    assert (first.utt_id, first.files[".wav"].relative_to(first.files[".wav"].parents[2]).as_posix()) == (
        "fvmh0_sa1", "timit/dr1-fvmh0/sa1.wav")


def test_sphere_headers_and_sample_counts(utterances):
    total = 0
    for utt in utterances:
        raw = utt.files[".wav"].read_bytes()
        fields, size = sphere.parse_header(raw, utt.files[".wav"])
        assert size == 1024 and raw[:7] == b"NIST_1A"
        assert (fields["sample_rate"], fields["sample_n_bytes"], fields["channel_count"],
                fields["sample_byte_format"], fields["sample_sig_bits"]) == (16000, 2, 1, "01", 16)
        assert "sample_coding" not in fields and fields["database_id"] == "TIMIT"
        assert fields["utterance_id"] == f"{utt.speaker[1:]}_{utt.sentence}"
        assert len(raw) == 1024 + 2 * fields["sample_count"]
        samples, rate = sphere.read_sphere(utt.files[".wav"])
        assert rate == 16000 and len(samples) == fields["sample_count"]
        # the header's own extremes: the samples were decoded in the right byte order
        assert (samples.min(), samples.max()) == (fields["sample_min"], fields["sample_max"])
        total += len(samples)
    assert total == 7_841_548  # 490.10 s


def test_phn_files_cover_the_audio_contiguously_with_the_61_labels(utterances):
    phones61 = timit.read_phone_map(PHONE_MAP)[0]
    labels, segments, gaps = set(), 0, []
    for utt in utterances:
        phn = timit.read_segments(utt.files[".phn"])
        count = sphere.parse_header(utt.files[".wav"].read_bytes())[0]["sample_count"]
        assert phn[0][0] == 0 and phn[0][2] == "h#" and phn[-1][2] == "h#"
        assert all(prev[1] == nxt[0] for prev, nxt in zip(phn, phn[1:])), utt.utt_id
        assert all(start < end for start, end, _ in phn), utt.utt_id
        assert phn[-1][1] <= count, utt.utt_id
        gaps.append(count - phn[-1][1])
        segments += len(phn)
        labels |= {label for _, _, label in phn}
        words = timit.read_segments(utt.files[".wrd"])
        assert phn[0][0] <= words[0][0] and words[-1][1] <= phn[-1][1]
    assert segments == 6185
    assert labels == set(phones61) and len(labels) == 61
    # the labelled span ends exactly at the last sample in 6 files, 2-119 samples short in the
    # others, and 2,802 short in madc0/si1367
    assert (sum(g == 0 for g in gaps), max(gaps), sorted(gaps)[-2]) == (6, 2802, 119)


def test_61_to_39_folding_of_fvmh0_sa1(utterances):
    utt = next(u for u in utterances if u.utt_id == "fvmh0_sa1")
    phones = [label for _, _, label in timit.read_segments(utt.files[".phn"])]
    assert " ".join(phones) == ("h# sh iy hv ae dcl y ix dcl d aa kcl s ux tcl en gcl g r iy s iy w aa sh epi "
                                "w aa dx ax q ao l y ih ax h#")
    _, _, fold39 = timit.read_phone_map(PHONE_MAP)
    # by hand: closures, epi and h# -> sil; hv -> hh; ix -> ih; ux -> uw; en -> n; ax -> ah;
    # ao -> aa; q deleted
    assert " ".join(fold(phones, fold39)) == ("sil sh iy hh ae sil y ih sil d aa sil s uw sil n sil g r iy s iy "
                                              "w aa sh sil w aa dx ah aa l y ih ah sil")


# ---- folds -----------------------------------------------------------------------------------

@pytest.mark.parametrize("folds", [4, 8])
def test_folds_split_by_speaker_balanced_by_sex_and_cover_all_16(folds):
    assignment = speaker_folds(DIALECTS, folds)
    assert len(assignment) == folds
    tested = []
    for split in assignment:
        train, dev, test = (set(split[s]) for s in ("train", "dev", "test"))
        assert not (train & dev or train & test or dev & test) and train | dev | test == set(SPEAKERS)
        assert sorted(s[0] for s in test) == ["f"] * (8 // folds) + ["m"] * (8 // folds)
        assert sorted(s[0] for s in dev) == ["f", "m"]
        assert {DIALECTS[s] for s in train} == set(DIALECTS.values())  # every region heard in training
        assert len({DIALECTS[s] for s in test}) == len(test)  # a region's woman and man never tested together
        tested += split["test"]
    assert sorted(tested) == sorted(SPEAKERS)  # each speaker tested exactly once
    assert speaker_folds(dict(reversed(DIALECTS.items())), folds) == assignment  # independent of input order


def test_fold_table_is_the_documented_one():
    assignment = speaker_folds(DIALECTS, 4)
    # the README's table: women of dr1-2 with men of dr3-4, ... (dev: woman of block k+2, man of block k+3)
    assert [(a["test"], a["dev"]) for a in assignment] == [
        (["faem0", "fvmh0", "madc0", "maeb0"], ["ftlg0", "madd0"]),
        (["falk0", "falr0", "mbgt0", "mbma1"], ["fblv0", "mcpm0"]),
        (["fapb0", "ftlg0", "madd0", "mbcg0"], ["fvmh0", "madc0"]),
        (["fbcg1", "fblv0", "marc0", "mcpm0"], ["falk0", "mbgt0"]),
    ]


def test_folds_reject_impossible_requests():
    with pytest.raises(ValueError, match="data.timit_sample.folds = 2"):
        speaker_folds(DIALECTS, 2)
    with pytest.raises(ValueError, match="data.timit_sample.folds = 3"):
        speaker_folds(DIALECTS, 3)
    with pytest.raises(ValueError, match="7 women and 8 men"):
        speaker_folds({s: d for s, d in DIALECTS.items() if s != "fvmh0"}, 4)
    with pytest.raises(ValueError, match="start with f or m"):
        speaker_folds({**DIALECTS, "xabc0": "dr1"}, 4)


# ---- prepared folds --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("timit_sample_out")
    cli_main(["data", "prepare-timit-sample", "--archive", str(ARCHIVE), "--meta", str(PHONE_MAP.parent),
              "--out", str(out), "--params", json.dumps({"timit_sample": {"folds": 4, "drop_sa": True}})])
    return out


def test_prepared_fold_has_the_timit_layout_and_the_folds_speakers(prepared):
    assignment = speaker_folds(DIALECTS, 4)
    for k in range(4):
        meta = json.loads((prepared / f"fold{k}" / "meta.json").read_text())
        assert meta["fold"] == k and meta["folds"] == assignment and meta["speakers"] == assignment[k]
        counts = json.loads((prepared / f"fold{k}" / "counts.json").read_text())
        assert {s: (c["utterances"], c["speakers"]) for s, c in counts.items()} == {
            "train": (80, 10), "dev": (16, 2), "test": (32, 4)}
    meta = json.loads((prepared / "fold0" / "meta.json").read_text())
    assert len(meta["phones"]) == 61 and len(meta["phones39"]) == 39 and meta["fold_61_39"]["q"] is None
    assert meta["sample_rate"] == 16000 and meta["corpus"] == "timit_sample" and meta["features"]["dim"] == 123
    corpus = load_corpus(prepared / "fold0")  # what the rnn_hmm systems read
    assert not corpus.is_digits and corpus.dim == 123
    for split in speech.SPLITS:
        data = corpus.splits[split]
        assert set(data["speakers"]) == set(assignment[0][split])
        assert not any(u.endswith(("_sa1", "_sa2")) for u in data["utt_ids"])
        assert all(len(f) == len(fp) for f, fp in zip(data["feats"], data["frame_phones"]))


def test_prepared_utterance_matches_its_files(prepared, utterances):
    meta = json.loads((prepared / "fold0" / "meta.json").read_text())
    data = torch.load(prepared / "fold0" / "test.pt")
    utt = next(u for u in utterances if u.utt_id == "fvmh0_si1466")
    i = data["utt_ids"].index(utt.utt_id)
    phn = timit.read_segments(utt.files[".phn"])
    assert data["phones"][i] == [p for _, _, p in phn]
    assert data["phone_times"][i].tolist() == [[s, e] for s, e, _ in phn]
    assert data["words"][i] == [w for _, _, w in timit.read_segments(utt.files[".wrd"])]
    # frame t covers samples [160 t, 160 t + 400): its label is the segment holding sample 160 t + 200
    frames = data["frame_phones"][i].tolist()
    for t in (0, 7, len(frames) // 2, len(frames) - 1):
        centre = 160 * t + 200
        want = next((p for s, e, p in phn if s <= centre < e), phn[-1][2])
        assert meta["phones"][frames[t]] == want, t
    # test features = raw features normalised with the TRAINING speakers' statistics
    samples, rate = sphere.read_sphere(utt.files[".wav"])
    raw = speech.speech_features(samples, rate, speech.FeatureConfig())
    mean, std = np.array(meta["norm"]["mean"]), np.array(meta["norm"]["std"])
    np.testing.assert_allclose(data["feats"][i].numpy(), (raw - mean) / std, rtol=1e-5, atol=1e-5)
    train = torch.cat(torch.load(prepared / "fold0" / "train.pt")["feats"]).double()
    assert train.mean(0).abs().max() < 1e-4 and (train.std(0, unbiased=False) - 1).abs().max() < 1e-3
    other = json.loads((prepared / "fold1" / "meta.json").read_text())["norm"]["mean"]
    assert not np.allclose(other, mean)  # each fold has its own training statistics


def test_ldc_layout_copy_reads_the_same(sample, utterances, prepared, tmp_path):
    """The same files renamed to LDC's TRAIN/DR1/FVMH0/SI1466.WAV give the same corpus."""
    root = tmp_path / "TIMIT"
    (root / "TEST").mkdir(parents=True)
    for utt in utterances:
        folder = root / "TRAIN" / utt.dialect.upper() / utt.speaker.upper()
        folder.mkdir(parents=True, exist_ok=True)
        for ext, path in utt.files.items():
            shutil.copyfile(path, folder / (utt.sentence + ext).upper())
    ldc = timit.list_corpus(root)
    key = lambda u: (u.split_dir, u.dialect, u.speaker, u.sentence, sorted(u.files))
    assert [key(u) for u in ldc] == [key(u) for u in utterances]
    out = tmp_path / "out"
    prepare_timit_sample(root, PHONE_MAP.parent, out, {"folds": 4})
    a, b = torch.load(prepared / "fold2" / "dev.pt"), torch.load(out / "fold2" / "dev.pt")
    assert a["utt_ids"] == b["utt_ids"] and all(torch.equal(x, y) for x, y in zip(a["feats"], b["feats"]))


def test_bad_settings_and_paths_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown data.timit_sample setting.*'fold'"):
        prepare_timit_sample(tmp_path, PHONE_MAP.parent, tmp_path / "out", {"fold": 4})
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty.*dr1-fvmh0"):
        prepare_timit_sample(tmp_path / "empty", PHONE_MAP.parent, tmp_path / "out")
