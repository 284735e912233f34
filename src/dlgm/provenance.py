"""Which source files a command depends on: the dlgm modules it imports, followed transitively.

Snakemake uses this for each rule's code inputs and EpochLoop for a checkpoint's code identity, so
both see the same set of files. Imports are read with ``ast``, also those inside functions. An entry
``"dlgm.commands.dbm:cmd_train"`` narrows the command module itself to what that command runs: its
module-level imports, those of ``register`` (the CLI calls it) and those of the function and of the
module's functions it calls; every module reached from there counts whole. Only the standard library
is used, so the Snakefile can load this file by path without importing the package.
"""
from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "dlgm"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """``dlgm.a.b`` -> ``<package_dir>/a/b.py`` (or ``a/b/__init__.py``); None if no such file."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path, package_dir: Path) -> list[str]:
    rel = path.relative_to(package_dir).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return parts[:-1]  # for a/__init__.py that is [dlgm, a], for a/b.py also [dlgm, a]


def _imports_in(nodes, package: list[str]) -> set[str]:
    """dlgm module names imported anywhere inside ``nodes`` (absolute or relative imports)."""
    found: set[str] = set()
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                stem = ".".join(base + ([node.module] if node.module else []))
                found.add(stem)
                found.update(f"{stem}.{alias.name}" for alias in node.names)  # submodules imported by name
    return {name for name in found if name.split(".")[0] == PACKAGE}


def _entry_imports(tree: ast.Module, function: str, package: list[str]) -> set[str]:
    """Imports of the module body outside functions, of ``register`` and of ``function`` with the
    module-level functions the latter calls (by name, transitively)."""
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if function not in functions:
        raise ValueError(f"no function {function!r} at the top level of the module")
    found = _imports_in([n for n in tree.body if n not in functions.values()], package)
    todo, seen = [function, "register"], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        found |= _imports_in([functions[name]], package)
        if name != "register":  # register only names the commands, it does not run them
            todo += [n.func.id for n in ast.walk(functions[name])
                     if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in functions]
    return found


def _with_parents(name: str) -> list[str]:
    """Importing ``dlgm.a.b`` runs ``dlgm/__init__`` and ``dlgm/a/__init__`` first."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _version(path: Path) -> tuple[int, int]:
    """What keys the caches below besides the path: a file edited since is read again."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@functools.cache
def _parse(path: Path, version: tuple[int, int]) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@functools.cache
def _module_imports(path: Path, package_dir: Path, version: tuple[int, int]) -> frozenset[str]:
    # Each rule's code inputs walk the same modules: parse and walk each file once per process.
    return frozenset(_imports_in([_parse(path, version)], _package_of(path, package_dir)))


@functools.cache
def module_closure(*entries: str, package_dir: Path = PACKAGE_DIR) -> tuple[Path, ...]:
    """Source files of ``entries`` (module names, or ``module:function``) and of every dlgm module
    they import, transitively; sorted."""
    seen: set[Path] = set()
    todo: list[str] = []
    for entry in entries:
        name, _, function = entry.partition(":")
        path = module_file(name, package_dir)
        if path is None:
            raise ValueError(f"no module {name!r} under {package_dir}")
        todo += _with_parents(name)
        if function:
            seen.add(path)
            for imported in _entry_imports(_parse(path, _version(path)), function, _package_of(path, package_dir)):
                todo += _with_parents(imported)
    while todo:
        path = module_file(todo.pop(), package_dir)
        if path is None or path in seen:
            continue
        seen.add(path)
        for imported in _module_imports(path, package_dir, _version(path)):
            todo += _with_parents(imported)
    return tuple(sorted(seen))


def code_files(*entries: str, root: Path | str = ".") -> list[str]:
    """``module_closure`` as paths relative to ``root`` (a rule's code inputs, from the repository root)."""
    root = Path(root).resolve()
    files = module_closure(*entries, package_dir=root / "src" / PACKAGE)
    return [str(p.relative_to(root)) for p in files]


@functools.cache
def code_digest(*entries: str) -> str:
    """sha256 over the files of ``module_closure(*entries)``: a checkpoint's code identity."""
    digest = hashlib.sha256()
    for path in module_closure(*entries):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
