"""Code dependencies of a stage, derived from the imports of its entry modules (never from hand lists).

``code_files("stages.<chapter>.train")`` is the module's file plus, transitively, every project module it
imports (``stages.*`` and ``models.*``; third-party packages are pinned by requirements.lock instead),
lazily imported ones included, and the ``__init__.py`` of each package on the way. Chapter declarations
reach other modules only through ``"module:function"`` strings, so a graph builder names the entry modules
of the steps it runs (the family's trainer, its model) and editing one chapter reruns only that chapter.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("stages", "models")


def module_of(target: str) -> str:
    """'package.module:function' -> 'package.module'."""
    return target.partition(":")[0]


@functools.cache
def _file(module: str) -> str | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(ROOT).as_posix()
    return None


def _is_project(module: str) -> bool:
    return module.split(".")[0] in PROJECT_PACKAGES


# Import statements, indented ones (lazy imports) included; a parenthesised name list may span lines.
# A regular expression rather than the ast module: parsing every file took most of a dry run's time.
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)|import[ \t]+([^\n#;]*))",
                     re.M)


def _names(text: str) -> list[str]:
    return [part.split(" as ")[0].strip() for part in text.strip("() \n").replace("\n", " ").split(",") if part.strip()]


@functools.cache
def _direct_imports(module: str) -> tuple[str, ...]:
    path = _file(module)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = []
    for m in _IMPORT.finditer((ROOT / path).read_text()):
        source, imported, plain = m.groups()
        if plain is not None:
            found += _names(plain)
            continue
        level = len(source) - len(source.lstrip("."))
        base = source[level:]
        if level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - level + 1] + ([base] if base else []))
        found.append(base)
        found += [f"{base}.{name}" for name in _names(imported) if _file(f"{base}.{name}")]
    return tuple(m for m in dict.fromkeys(found) if _is_project(m) and _file(m))


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@functools.cache
def _closure(module: str) -> frozenset[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        mod = todo.pop()
        for m in _with_parents(mod):
            if m not in seen and _file(m):
                seen.add(m)
                todo += list(_direct_imports(m))
    return frozenset(seen)


def code_files(*targets: str) -> list[str]:
    """Sorted project files the given modules (or "module:function" targets) execute when imported."""
    modules: set[str] = set()
    for target in targets:
        module = module_of(target)
        if not _file(module):
            raise ValueError(f"no module {module!r} under {ROOT}")
        modules |= _closure(module)
    return sorted(_file(m) for m in modules)
