"""The documentation site (docs/) says what the code does: every fenced YAML block that is a search space passes
`sweeper launch FILE --dry-run` (a block titled "fragment..." is a part of one and must at least parse as YAML),
every `sweeper ...` command shown parses with the CLI's own click command (real command, real options, valid
values), and the generated reference names every schema key and every CLI option. `scripts/test` builds the site
itself with `mkdocs build --strict`.

The dry runs are the real command except for the time model's calibration, which trains each architecture for
seconds on this machine (with helper processes): it is replaced by one second per epoch, so these dry runs check
loading, validation, your code's checks and the cost model, and start no process.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from sweeper.cli import app
from tests.conftest import REPO

DOCS = REPO / "docs"
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
                   re.MULTILINE | re.DOTALL)
SNIPPET = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$')
SHELL_LANGS = {"", "bash", "sh", "console", "shell", "text"}
INVOCATION = re.compile(r"(?:(?<=^)|(?<=[\s'\"(]))(?:scripts/|\.venv/bin/)?sweeper(?=\s+-?-?[a-z])")
SUBCOMMAND_SPAN = re.compile(r"^(?:launch|resume|extend|report|status|list|export|evaluate)\s+-")
runner = CliRunner()


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    title: str
    body: str  # snippets (--8<-- "path") replaced by the files they include
    included: Path | None  # the file, when the block is exactly one snippet


def blocks() -> list[Block]:
    out = []
    for page in sorted(DOCS.rglob("*.md")):
        for m in FENCE.finditer(page.read_text()):
            info = m.group("info").strip()
            lang = info.split()[0] if info and not info.startswith(("title", "{")) else ""
            title = re.search(r'title="([^"]*)"', info)
            lines, included = [], None
            raw = m.group("body").splitlines()
            for line in raw:
                snippet = SNIPPET.match(line)
                if snippet:
                    included = REPO / snippet.group(1)
                    lines.append(included.read_text())
                else:
                    lines.append(line)
            only = included if len(raw) == 1 and included is not None else None
            out.append(Block(str(page.relative_to(DOCS)), lang, title.group(1) if title else "", "\n".join(lines),
                             only))
    return out


BLOCKS = blocks()
SPACES = [b for b in BLOCKS if b.lang == "yaml" and not b.title.startswith("fragment")]
FRAGMENTS = [b for b in BLOCKS if b.lang == "yaml" and b.title.startswith("fragment")]


def test_the_docs_show_search_spaces_and_mark_their_fragments() -> None:
    assert len(SPACES) >= 5 and FRAGMENTS
    assert all(b.lang in {"yaml", "python", *SHELL_LANGS} for b in BLOCKS), {b.lang for b in BLOCKS}
    for b in FRAGMENTS:
        assert isinstance(yaml.safe_load(b.body), dict), f"{b.page}: {b.title} is not a YAML mapping"


@pytest.mark.parametrize("block", SPACES, ids=[f"{b.page}:{b.title or i}" for i, b in enumerate(SPACES)])
def test_every_search_space_in_the_docs_passes_a_dry_run(block: Block, tmp_path: Path, real_data: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from sweeper.run.calibrate import epochs

    monkeypatch.setattr(epochs, "seconds_per_epoch", lambda space, data=None: {
        a: 1.0 for a in epochs.trial_architectures(space)})
    monkeypatch.chdir(REPO)  # as a user runs them: `examples.` imports from the repository root
    if block.included is not None:
        path = block.included
    else:
        name = Path(block.title).name if block.title.endswith(".yaml") else "space.yaml"
        path = tmp_path / name
        path.write_text(block.body)
    result = runner.invoke(app, ["launch", str(path), "--dry-run", "--data-dir", str(real_data),
                                 "--storage", str(tmp_path / "runs")])
    assert result.exit_code == 0, f"{block.page}: {block.title}\n{result.output}"
    assert "trial-epochs on a full run" in result.stdout
    assert not (tmp_path / "runs").exists()


# ---- commands ----------------------------------------------------------------------------------------------------

def shown_commands() -> list[tuple[str, str]]:
    """(page, command line) of every sweeper command in the docs' shell blocks and inline code, as argv text."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        rel = str(page.relative_to(DOCS))
        spans = []
        for b in (b for b in BLOCKS if b.page == rel and b.lang in SHELL_LANGS):
            spans += b.body.replace("\\\n", " ").splitlines()
        prose = FENCE.sub("", text)
        for span in re.findall(r"`([^`\n]+)`", prose):
            spans.append(f"sweeper {span}" if SUBCOMMAND_SPAN.match(span) else span)
        for line in spans:
            for m in INVOCATION.finditer(line):
                rest = line[m.end():]
                quote = line[m.start() - 1] if m.start() > 0 and line[m.start() - 1] in "'\"" else None
                if quote:
                    rest = rest.split(quote, 1)[0]
                found.append((rel, rest))
    return found


def argv(text: str) -> list[str]:
    """A shell line's words up to its first operator (|, >, &&, ;), comments dropped."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = []
    for word in lexer:
        if set(word) <= set("|&;<>()"):
            break
        words.append(word)
    return words


@functools.cache
def cli() -> Any:
    """The CLI as click commands (built once: Typer builds it anew on every call)."""
    return typer.main.get_command(app)


def parse(words: list[str]) -> None:
    """Parse `sweeper WORDS` with the CLI's click command; a missing required argument gets a placeholder (pages
    name commands without their arguments: `sweeper extend`), any other usage error is raised."""
    group = cli()
    ctx = group.context_class(group, info_name="sweeper")
    if words and words[0].startswith("-"):  # sweeper's own options are eager (completion): names only
        known = {"--help", *(o for p in group.params for o in (*p.opts, *p.secondary_opts))}
        assert set(words) <= known, f"unknown option of sweeper: {words}"
        return
    assert words and words[0] in group.list_commands(ctx), f"no such command: sweeper {words[:1]}"
    command = group.get_command(ctx, words[0])
    assert command is not None
    args = words[1:]
    for _ in range(5):
        try:
            command.make_context(words[0], list(args), parent=ctx)
            return
        except Exception as exc:
            param: Any = getattr(exc, "param", None)
            if type(exc).__name__ == "MissingParameter" and param is not None:
                args += ["PLACEHOLDER"] if param.param_type_name == "argument" else [param.opts[0], "PLACEHOLDER"]
                continue
            raise AssertionError(f"sweeper {' '.join(words)}: {exc}") from exc
    raise AssertionError(f"sweeper {' '.join(words)}: arguments never satisfied")


COMMANDS = shown_commands()


def test_every_command_shown_exists_with_its_options() -> None:
    assert len(COMMANDS) > 50
    errors = []
    for page, text in COMMANDS:
        try:
            parse(argv(text))
        except AssertionError as exc:
            errors.append(f"{page}: {exc}")
    assert not errors, "\n".join(errors)


def test_the_command_check_catches_a_wrong_option_and_value() -> None:
    for bad in ("launch x.yaml --dry-runn", "report --format pdf", "report --out", "lunch x.yaml", "--helpp"):
        with pytest.raises(AssertionError):
            parse(argv(bad))
    parse(argv("report quickstart --where \"optimizer == 'adam'\" --top 3 > /dev/null"))


# ---- the generated reference -------------------------------------------------------------------------------------

def hooks() -> Any:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_names_every_key_and_every_option() -> None:
    from sweeper.spec.params import TrialFields
    from sweeper.spec.schema import DataSpec, ResourcesSpec, SchedulerSpec, SearchSpec, SweepSpec

    h = hooks()
    keys, trial = h.yaml_keys(), h.trial_keys()
    for prefix, cls in (("", SweepSpec), ("scheduler.", SchedulerSpec), ("search.", SearchSpec),
                        ("resources.", ResourcesSpec), ("data.", DataSpec)):
        for name in cls.model_fields:
            assert f"| `{prefix}{name}` |" in keys
    for name in TrialFields.model_fields:
        assert f"| `{name}` |" in trial
    assert "| `lr` | float > 0 or null | `null` | all | null: Keras' default for the optimizer |" in trial
    cli = h.cli_commands()
    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="sweeper")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None and f"## sweeper {name}\n" in cli
        for p in command.params:
            assert all(o in cli for o in p.opts if o.startswith("-"))
    page = (DOCS / "reference" / "yaml.md").read_text()
    assert "<!-- generated:" not in h.render(page)
    with pytest.raises(KeyError):
        h.render("<!-- generated: nothing -->")
