"""The seeds each run of a config is trained with.

Standard library only: the Snakefile loads this file by path (it never imports dlgm).
"""
from __future__ import annotations

from typing import Mapping


def seeds_of(config: Mapping, section: str, variant: str | None = None) -> list[int]:
    """The seeds of a config section, or of one of its variants where ``variant_seeds`` names it."""
    return list(config[section].get("variant_seeds", {}).get(variant, config[section]["seeds"]))
