"""version: the installed sweeper's version, at the bottom of the package (it imports nothing of sweeper's).

`__version__` is what the installed distribution's metadata says (pyproject.toml's version), read once at import;
a source tree that was never installed reads "0.0.0+unknown". sweep.json records it (store/state.py), and
`sweeper.__version__` re-exports it. Every package may import this module; it may import only the standard library.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sweeper")
except PackageNotFoundError:  # pragma: no cover - only a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
