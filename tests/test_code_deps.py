"""Code dependencies are derived from imports: the fast scanner agrees with Python's own parser on every
project module, lazy imports count, and models/ imports nothing from stages/."""
from __future__ import annotations

import ast

import pytest

from stages import code_deps
from tests.conftest import ROOT

MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for pkg in code_deps.PROJECT_PACKAGES for p in (ROOT / pkg).rglob("*.py")
)


def _ast_imports(module: str) -> set[str]:
    """Reference: project modules named by the import statements the ast module finds anywhere in the file."""
    path = code_deps._file(module)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in code_deps.PROJECT_PACKAGES and code_deps._file(m)}


@pytest.mark.parametrize("module", MODULES)
def test_scanner_matches_the_python_parser(module):
    assert set(code_deps._direct_imports(module)) == _ast_imports(module)


def test_models_import_nothing_from_stages():
    for module in MODULES:
        if module.startswith("models"):
            assert not [m for m in code_deps._closure(module) if m.startswith("stages")], module


def test_lazy_imports_and_parent_packages_count():
    files = code_deps.code_files("stages.video.sample")
    assert "stages/metrics/lpips.py" in files            # imported inside a function
    assert "stages/video/__init__.py" in files           # the chapter declaration runs on import
    assert "models/srvp.py" not in files                 # the model is reached through the registry only
    with pytest.raises(ValueError, match="no module"):
        code_deps.code_files("stages.nope")
