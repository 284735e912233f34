"""`python -m dlgm nn_crf ...` commands."""
from __future__ import annotations


def register(subparsers) -> None:
    pass
