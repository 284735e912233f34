"""The corpus adapter on a tiny FSDD-format folder: scoring rules, digit-loop decoding, CMVN, clear errors."""
import json
import math

import pytest
import torch

from dlgm.hmm.decode import decode
from dlgm.speech.corpus import load_corpus

LEXICON = {"one": ["w", "ah", "n"], "two": ["t", "uw"]}
PHONES = ["ah", "n", "sil", "t", "uw", "w"]


def _write(folder, words_per_split):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"corpus": "fsdd", "phones": PHONES, "lexicon": LEXICON,
                                                  "words": ["one", "two"]}))
    gen = torch.Generator().manual_seed(0)
    for split, utts in words_per_split.items():
        phones = []
        for words in utts:
            seq = ["sil"]
            for w in words:
                seq += LEXICON[w] + ["sil"]
            phones.append(seq)
        feats = [torch.randn(6 * len(p), 4, generator=gen) * 2 + 5 for p in phones]
        torch.save({"feats": feats, "phones": phones, "words": utts}, folder / f"{split}.pt")
    return folder


def test_scoring_digit_loop_and_cmvn(tmp_path):
    utts = [["one", "two"], ["two"], ["one", "one"]]
    corpus = load_corpus(_write(tmp_path / "fsdd", {s: utts for s in ("train", "dev", "test")}), utterance_cmvn=True)
    ids = corpus.phone_ids("test")
    assert corpus.per("test", ids) == 0.0
    assert corpus.per("test", [[]] * 3) == 1.0  # silence is not scored: 5 + 2 + 6 phones all deleted
    x = corpus.feats("test", torch.device("cpu"))[0]
    torch.testing.assert_close(x.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    # a scorer that knows the answer: each frame's true phone (3 states per phone, 2 frames each)
    log_self = torch.full((len(PHONES) * 3,), math.log(0.5), dtype=torch.float64)
    graph = corpus.digit_loop(log_self, 3, 1.0, 0.0)
    truth = [torch.tensor([p * 3 + k for p in seq for k in range(3) for _ in range(2)]) for seq in ids]
    feats = [t.float().unsqueeze(1) for t in truth]

    def score(x, lengths):
        return torch.nn.functional.one_hot(x[..., 0].long(), len(PHONES) * 3).float().mul(20).log_softmax(-1)

    units, _ = decode(score, graph, feats, batch_size=2)
    assert corpus.der("test", units) == 0.0


def test_missing_meta_and_unknown_phone_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta.json"):
        load_corpus(tmp_path)
    folder = _write(tmp_path / "bad", {s: [["one"]] for s in ("train", "dev", "test")})
    data = torch.load(folder / "test.pt")
    data["phones"][0][1] = "xx"
    torch.save(data, folder / "test.pt")
    with pytest.raises(ValueError, match="test.pt.*xx"):
        load_corpus(folder).phone_ids("test")
