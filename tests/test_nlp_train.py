"""`python -m dlgm nn_crf train/plot` end to end on a small synthetic corpus whose tags are a
function of the words: both likelihoods must tag it perfectly; same seed -> same metrics; NaN
stops with an error naming the stage; a rerun resumes from the checkpoint; the figures appear."""
import json
import random

import pytest
import torch

from dlgm.cli import main
from dlgm.training import TrainingDiverged

LEXICON = {"det": ["the", "a", "The"], "noun": ["cat", "dog", "Paris", "bird"], "verb": ["sees", "likes"],
           "prep": ["near", "with"], "punct": ["."]}


def sentence(rng):
    words, tags = [], []

    def np_():
        words.extend([rng.choice(LEXICON["det"]), rng.choice(LEXICON["noun"])])
        tags.extend(["B-NP", "I-NP"])

    np_()
    words.append(rng.choice(LEXICON["verb"]))
    tags.append("B-VP")
    np_()
    if rng.random() < 0.5:
        words.append(rng.choice(LEXICON["prep"]))
        tags.append("B-PP")
        np_()
    words.append(".")
    tags.append("O")
    return words, tags


def write_corpus(folder, sizes=(120, 30, 30)):
    rng = random.Random(0)
    paths = {}
    for split, n in zip(("train", "valid", "test"), sizes):
        pairs = [sentence(rng) for _ in range(n)]
        paths[split] = folder / f"{split}.pt"
        torch.save({"words": [w for w, _ in pairs], "tags": [t for _, t in pairs],
                    "pos": [["X"] * len(w) for w, _ in pairs]}, paths[split])
    return paths


SETTINGS = {"window": 3, "word_dim": 8, "caps_dim": 2, "hidden": 16, "dictionary_size": 100, "dictionary_from": ["own"],
            "digits_to_zero": True,
            "min_count": 1, "tag_scheme": "iobes", "epochs": 6, "lr": 0.3, "lr_fan_in": True, "lr_decay": 0.0,
            "batch_size": 8, "eval_batch_size": 16, "train_limit": 0, "eval_limit": 0}


def train(paths, run, likelihood, kind="chunk", seed=0, extra=(), **overrides):
    run.mkdir(parents=True, exist_ok=True)
    main(["nn_crf", "train", *extra, "--params", json.dumps({**SETTINGS, **overrides}), "--kind", kind,
          "--likelihood", likelihood, "--variant", f"chunk_{likelihood}", "--seed", str(seed), "--device", "cpu",
          "--train", str(paths["train"]), "--valid", str(paths["valid"]), "--test", str(paths["test"]),
          "--model", str(run / "model.pt"), "--metrics", str(run / "metrics.json"), "--curve", str(run / "curve.csv")])
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def test_both_likelihoods_tag_a_deterministic_corpus_perfectly_and_plot(corpus, tmp_path, caplog):
    runs = []
    for likelihood in ("wll", "sll"):
        record = train(corpus, tmp_path / likelihood / "seed0", likelihood)
        assert record["metrics"]["test_f1"] == 1.0, record["metrics"]
        assert record["metrics"]["test_accuracy"] == 1.0
        assert set(record["extra"]["per_type_test"]) == {"NP", "VP", "PP"}
        runs.append(tmp_path / likelihood / "seed0")
    saved = torch.load(tmp_path / "sll" / "seed0" / "model.pt", weights_only=False)
    a, names = saved["state_dict"]["crf.transitions"], saved["tags"]
    # the CRF learned that O is never followed by I-NP / E-NP (IOBES) while B-NP is
    assert a[names.index("B-NP"), names.index("E-NP")] > a[names.index("O"), names.index("E-NP")]

    papers = tmp_path / "papers.yaml"
    papers.write_text("nn_crf:\n  rows:\n    - {variant: chunk_sll, metric: test_f1, paper_value: 0.9033}\n")
    out = tmp_path / "figures"
    names = ("transitions", "per_type_f1", "learning_curves", "wll_vs_sll")
    main(["nn_crf", "plot", "--metrics", *[str(r / "metrics.json") for r in runs],
          "--models", *[str(r / "model.pt") for r in runs], "--curves", *[str(r / "curve.csv") for r in runs],
          "--papers", str(papers), *[a for n in names for a in (f"--{n.replace('_', '-')}", str(out / f"{n}.png"))]])
    for name in names:
        assert (out / f"{name}.png").stat().st_size > 1000
        assert (out / f"{name}.txt").read_text().strip()
    with pytest.raises(SystemExit):  # the three lists must name the same runs
        main(["nn_crf", "plot", "--metrics", *[str(r / "metrics.json") for r in runs],
              "--models", str(runs[0] / "model.pt"), "--curves", *[str(r / "curve.csv") for r in runs],
              "--papers", str(papers), *[a for n in names for a in (f"--{n.replace('_', '-')}", str(out / "x.png"))]])
    assert "got 2, 1 and 2 files" in caplog.text and not (out / "x.png").exists()


def test_same_seed_same_metrics_and_rerun_resumes(corpus, tmp_path):
    first = train(corpus, tmp_path / "a", "sll", epochs=2)
    second = train(corpus, tmp_path / "b", "sll", epochs=2)
    assert first["metrics"] == second["metrics"]
    w1 = torch.load(tmp_path / "a" / "model.pt", weights_only=False)["state_dict"]
    w2 = torch.load(tmp_path / "b" / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    # rerun in the same folder: the checkpoint is complete, no epoch runs, the best model comes back
    (tmp_path / "a" / "metrics.json").unlink()
    again = train(corpus, tmp_path / "a", "sll", epochs=2)
    assert again["metrics"] == first["metrics"]
    assert len((tmp_path / "a" / "curve.csv").read_text().strip().splitlines()) == 3
    assert (tmp_path / "a" / "checkpoint_train.pt").exists()  # RunLoops' one naming scheme


def test_pos_kind_reports_accuracy_only(corpus, tmp_path):
    record = train(corpus, tmp_path, "wll", kind="pos", epochs=1)
    assert set(record["metrics"]) == {"valid_accuracy", "test_accuracy"}


def test_divergence_stops_with_a_clear_error(corpus, tmp_path):
    with pytest.raises(TrainingDiverged, match=r"train: .* epoch 1"):
        main(["-v", "nn_crf", "train", "--params", json.dumps({**SETTINGS, "lr": 1e38}), "--kind", "chunk",
              "--likelihood", "sll", "--variant", "chunk_sll", "--device", "cpu", "--train", str(corpus["train"]),
              "--valid", str(corpus["valid"]), "--test", str(corpus["test"]), "--model", str(tmp_path / "m.pt"),
              "--metrics", str(tmp_path / "metrics.json"), "--curve", str(tmp_path / "c.csv")])
    assert not (tmp_path / "metrics.json").exists()


def test_missing_key_in_a_split_names_the_file(tmp_path, corpus, caplog):
    bad = tmp_path / "bad.pt"
    torch.save({"words": [["a"]]}, bad)
    with pytest.raises(SystemExit):
        main(["nn_crf", "train", "--params", json.dumps(SETTINGS), "--kind", "chunk", "--likelihood", "wll",
              "--variant", "x", "--train", str(bad), "--valid", str(corpus["valid"]), "--test", str(corpus["test"]),
              "--model", str(tmp_path / "m.pt"), "--metrics", str(tmp_path / "m.json"), "--curve", str(tmp_path / "c")])
    assert f"{bad}: missing key 'tags'" in caplog.text


def test_dictionary_from_other_corpora_counts_their_words(corpus, tmp_path, caplog):
    """dictionary_from: [own, other] adds the other corpus's words; without own, the task's words
    outside the other corpus are read as unknown (the paper's WSJ dictionary for Reuters NER)."""
    other = tmp_path / "other.pt"
    torch.save({"words": [["the", "zebra", "zebra"], ["The", "cat", "9"]], "tags": [["O"] * 3, ["O"] * 3]}, other)
    both = train(corpus, tmp_path / "both", "wll", epochs=1, extra=["--dictionary-from", str(other)],
                 dictionary_from=["own", "other"])
    vocab = torch.load(tmp_path / "both" / "model.pt", weights_only=False)["vocab"]
    assert {"zebra", "0", "dog", "sees"} <= set(vocab)
    train(corpus, tmp_path / "wsj", "wll", epochs=1, extra=["--dictionary-from", str(other)],
          dictionary_from=["other"], min_count=1)
    vocab = torch.load(tmp_path / "wsj" / "model.pt", weights_only=False)["vocab"]
    assert set(vocab) == {vocab[0], vocab[1], "the", "zebra", "cat", "0"}  # padding, unknown, the other's words
    assert both["metrics"]["test_f1"] >= 0
    with pytest.raises(SystemExit):
        train(corpus, tmp_path / "bad", "wll", epochs=1, dictionary_from=["own", "other"])
    assert "names 1 corpora but --dictionary-from gives 0 files" in caplog.text
