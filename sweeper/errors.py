"""Errors a user can cause, and the hint that names what they probably meant. The CLI prints a SweeperError as
one line and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


class SweeperError(Exception):
    """Bad input: a YAML file, CLI option, data folder or Parquet file that breaks a rule.

    The message is one line that names the file, the key or value, and the rule broken.
    """

    exit_code = 2


def did_you_mean(word: str, options: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """" (did you mean 'x'?)" for the option closest to `word` (or the one an alias names), else ""."""
    options = list(options)
    if aliases and aliases.get(word) in options:
        return f" (did you mean {aliases[word]!r}?)"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
