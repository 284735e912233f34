"""Word and capitalisation features of the window approach (Collobert et al. 2011, Sec. 3.2).

Words are lowercased (and, optionally, every digit mapped to 0) and looked up in a dictionary of
the most frequent training words; the capitalisation of the original word is a separate
discrete feature with its own small embedding.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

PADDING, UNKNOWN = "<pad>", "<unk>"
# capitalisation classes; index 0 is the padding word's class
CAPS = ("padding", "all_lower", "first_upper", "all_upper", "has_upper", "no_letters")
_DIGIT = re.compile(r"[0-9]")


def normalise(word: str, digits_to_zero: bool) -> str:
    word = word.lower()
    return _DIGIT.sub("0", word) if digits_to_zero else word


def caps_class(word: str) -> int:
    """Index into CAPS for one original-case word."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return CAPS.index("no_letters")
    if all(c.islower() for c in letters):
        return CAPS.index("all_lower")
    if all(c.isupper() for c in letters):
        return CAPS.index("all_upper")
    if word[0].isupper():
        return CAPS.index("first_upper")
    return CAPS.index("has_upper")


@dataclass
class Vocabulary:
    """Padding (index 0), unknown (1), then words by decreasing training frequency."""

    words: list[str]
    digits_to_zero: bool

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], size: int, digits_to_zero: bool,
              min_count: int = 1) -> "Vocabulary":
        counts = Counter(normalise(w, digits_to_zero) for s in sentences for w in s)
        # ties broken alphabetically so the dictionary does not depend on corpus order
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([PADDING, UNKNOWN] + ranked[: max(size - 2, 0)], digits_to_zero)

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, sentence: Sequence[str]) -> list[int]:
        unknown = self.index[UNKNOWN]
        return [self.index.get(normalise(w, self.digits_to_zero), unknown) for w in sentence]
