"""The architecture is written once, in the package docstrings: each names every module and subpackage in it, so
the text cannot drift from the tree; and the import checks (no cycle, nothing imports the root back) hold."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = sorted(p.parent for p in (REPO / "sweeper").rglob("__init__.py"))


def members(package: Path) -> list[str]:
    """The modules (file names without .py) and subpackages a package holds."""
    modules = [p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")]
    return sorted(modules + [p.parent.name for p in package.glob("*/__init__.py")])


def unnamed(package: Path) -> list[str]:
    """The members of `package` its docstring does not name (as a word of its own)."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    return [m for m in members(package) if not re.search(rf"(?<![\w.]){re.escape(m)}(?!\w)", doc)]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_each_package_docstring_names_every_module_in_it(package: Path) -> None:
    missing = unnamed(package)
    assert not missing, f"{package.relative_to(REPO)}/__init__.py's docstring does not name {missing}"


def test_a_package_docstring_that_misses_a_module_is_caught(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text('"""pkg: `alpha` does one thing, alpha.beta another."""\n')
    for name in ("alpha", "beta", "alphabet"):
        (tmp_path / "pkg" / f"{name}.py").write_text("")
    assert unnamed(tmp_path / "pkg") == ["alphabet", "beta"]  # a word of its own, not part of another name


def test_no_import_cycle_and_nothing_imports_the_root_package() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "check_imports.py")], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
