"""Ablations: controlled experiments that explain a row of the report.

An ablation (config ``ablations.<paper>``) names a base variant and the parameters it changes; the
paper's rule file runs the base variant's command with ``with_changes(base_params, set)`` and writes
``data/runs/<paper>/<name>/seed<N>/``, and the report sets its metrics beside the base run's.

Standard library only: the Snakefile loads this file by path (it never imports dlgm).
"""
from __future__ import annotations

from typing import Any, Collection, Mapping


class AblationError(ValueError):
    pass


def with_changes(base: Mapping[str, Any], changes: Mapping[str, Any], where: str) -> dict:
    """``base`` with ``changes`` merged in (nested mappings merged key by key).

    Every changed key must exist in ``base`` with a value of the same kind (a number for a number, a
    mapping for a mapping, ...): an ablation that changes nothing because of a misspelt key, or that
    passes a list where the command reads a number, is refused with ``where`` and the key in the
    message.
    """
    out = dict(base)
    for key, value in changes.items():
        if key not in base:
            raise AblationError(f"{where}: {key!r} is not a parameter of the base run "
                                f"(its parameters: {sorted(base)})")
        old = base[key]
        if isinstance(old, Mapping):
            if not isinstance(value, Mapping):
                raise AblationError(f"{where}.{key}: expected a mapping like the base run's, got {value!r}")
            out[key] = with_changes(old, value, f"{where}.{key}")
        elif old is not None and _kind(old) != _kind(value):
            raise AblationError(f"{where}.{key}: expected a {_kind(old)} like the base run's {old!r}, got {value!r}")
        else:
            out[key] = value
    return out


def lineage(paper: str, entries: Mapping[str, Mapping], variant: str,
            variants: Collection[str] | None = None) -> tuple[str, list[Mapping]]:
    """(root, chain) of a run: ``root`` is the real variant it starts from and ``chain`` the
    ablations (``entries``: name -> entry) from the one based on ``root`` down to ``variant`` ([] for
    a real variant). With ``variants`` None every name that is not an ablation counts as real;
    otherwise a base that is neither one of ``variants`` nor an ablation is refused, and so is a
    cycle, naming the ablation."""
    chain, name = [], variant
    while (name in entries) if variants is None else (name not in variants):
        if name not in entries:
            where = f"ablations.{paper}[{chain[-1]['name']}]" if chain else f"{paper} variant {variant!r}"
            raise AblationError(f"{where}: base {name!r} is neither a variant of {paper} ({', '.join(variants)}) "
                                f"nor another ablation of {paper}")
        if name in [e["name"] for e in chain]:
            raise AblationError(f"ablations.{paper}[{variant}]: its bases form a cycle "
                                f"({' -> '.join(e['name'] for e in chain)} -> {name})")
        chain.append(entries[name])
        name = entries[name]["base"]
    return name, chain[::-1]


def without_disabled(entries: Mapping[str, Mapping], disabled: Collection[str]) -> dict[str, Mapping]:
    """The ablations (name -> entry) whose chain of bases does not start at one of the ``disabled``
    variants (models the config turns off): an ablation of a model that does not run is dropped with
    it, not refused. A base that is no variant at all is left for ``lineage`` to refuse."""
    def root(name: str) -> str:
        seen = set()
        while name in entries and name not in seen:
            seen.add(name)
            name = entries[name]["base"]
        return name
    return {name: entry for name, entry in entries.items() if root(name) not in disabled}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return type(value).__name__


def changes_text(changes: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``{"a": {"b": 1}, "c": 2}`` -> ``["a.b = 1", "c = 2"]``: what an ablation changes, for the report."""
    out = []
    for key, value in changes.items():
        if isinstance(value, Mapping):
            out += changes_text(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key} = {value}")
    return out
