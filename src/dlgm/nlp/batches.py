"""Sentences as padded index tensors on the device, and length-bucketed mini-batches.

A split is encoded once (words, capitalisation classes, tags) into [N, T_max] tensors that stay
on the device for the whole run; each mini-batch is a slice of an index permutation, cut to
the longest sentence it holds (lengths are known on the host, so no device sync is needed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from dlgm.nlp.features import Vocabulary, caps_class


@dataclass
class EncodedSplit:
    words: torch.Tensor  # [N, T_max] int64, 0 = padding
    caps: torch.Tensor  # [N, T_max] int64, 0 = padding
    tags: torch.Tensor | None  # [N, T_max] int64 (0 at padding), None when not needed
    mask: torch.Tensor  # [N, T_max] bool
    lengths: np.ndarray  # host copy of the sentence lengths

    def __len__(self) -> int:
        return len(self.lengths)


def encode(sentences: Sequence[Sequence[str]], vocab: Vocabulary, device: torch.device,
           tags: Sequence[Sequence[str]] | None = None, tag_index: dict[str, int] | None = None,
           name: str = "split") -> EncodedSplit:
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    if len(lengths) == 0 or lengths.min() < 1:
        raise ValueError(f"{name}: every sentence needs at least one word (and the split one sentence)")
    longest = int(lengths.max())
    words = np.zeros((len(lengths), longest), dtype=np.int64)
    caps = np.zeros_like(words)
    for i, sentence in enumerate(sentences):
        words[i, : len(sentence)] = vocab.encode(sentence)
        caps[i, : len(sentence)] = [caps_class(w) for w in sentence]
    tag_ids = None
    if tags is not None:
        tag_ids = np.zeros_like(words)
        for i, sentence_tags in enumerate(tags):
            if len(sentence_tags) != lengths[i]:
                raise ValueError(f"{name}: sentence {i} has {lengths[i]} words but {len(sentence_tags)} tags")
            try:
                tag_ids[i, : len(sentence_tags)] = [tag_index[t] for t in sentence_tags]
            except KeyError as err:
                raise ValueError(f"{name}: sentence {i} has tag {err.args[0]!r} not in the tag set") from None
        tag_ids = torch.from_numpy(tag_ids).to(device)
    mask = torch.arange(longest)[None, :] < torch.from_numpy(lengths)[:, None]
    return EncodedSplit(torch.from_numpy(words).to(device), torch.from_numpy(caps).to(device), tag_ids,
                        mask.to(device), lengths)


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                     bucket: int = 50) -> list[np.ndarray]:
    """Random batches of similar-length sentences: shuffle, sort within pools of ``bucket``
    batches (less padding), then shuffle the batch order."""
    order = rng.permutation(len(lengths))
    pool = batch_size * bucket
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def ordered_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches in order of length (for scoring a whole split with little padding)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
