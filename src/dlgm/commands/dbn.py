"""`python -m dlgm dbn ...` commands."""
from __future__ import annotations


def register(subparsers) -> None:
    pass
