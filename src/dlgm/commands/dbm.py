"""`python -m dlgm dbm ...` commands."""
from __future__ import annotations


def register(subparsers) -> None:
    pass
