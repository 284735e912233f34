"""`python -m dlgm data ...` commands."""
from __future__ import annotations


def register(subparsers) -> None:
    pass
