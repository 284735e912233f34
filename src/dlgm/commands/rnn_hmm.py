"""`python -m dlgm rnn_hmm ...` commands."""
from __future__ import annotations


def register(subparsers) -> None:
    pass
