"""MkDocs hook (mkdocs.yml `hooks:`): the reference pages' tables, generated at every build so they cannot drift.

A page asks for a table with a line `<!-- generated: NAME -->`; an unknown NAME fails the build. The YAML keys come
from the pydantic models of sweeper/spec/schema.py and sweeper/spec/params.py: each field's type, constraints and
default from pydantic, its rule from the source comment beside it (or the comment block above a field that has
none beside it; a block under a field whose comment ends in ";" "," or ":" goes on with that comment; any other
block heads the fields below it). The commands come from the Typer app, as click commands with their parameters.
The error rates of the report's "worse" come from docs/error_rates.py, which runs the report's own test.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import io
import re
import textwrap
import tokenize
import types
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)


# ---- comments in the source ---------------------------------------------------------------------------------------

def source_notes(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """(each field's or member's rule from its comments, notes that head a group: field -> the note above it)."""
    src = textwrap.dedent(inspect.getsource(cls))
    standalone: dict[int, str] = {}
    trailing: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            (standalone if tok.line.strip().startswith("#") else trailing)[tok.start[0]] = text
    body = ast.parse(src).body[0]
    assert isinstance(body, ast.ClassDef)
    rules: dict[str, str] = {}
    heads: dict[str, str] = {}
    previous_end, previous = body.body[0].lineno - 1 if body.body else 0, None
    for node in body.body:
        name = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        end = node.end_lineno or node.lineno
        block = " ".join(standalone[i] for i in range(previous_end + 1, node.lineno) if i in standalone)
        beside = " ".join(trailing[i] for i in range(node.lineno, end + 1) if i in trailing)
        if block and previous is not None and rules.get(previous, "").endswith((";", ",", ":")):
            rules[previous] += " " + block
        elif block and name is not None and not beside:
            beside = block
        elif block and name is not None:
            heads[name] = block
        if name is not None:
            rules[name] = beside
        previous, previous_end = name, end
    return rules, heads


# ---- YAML keys ---------------------------------------------------------------------------------------------------

def _constraints(metadata: list[Any]) -> list[str]:
    out = []
    for m in metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(m, attr, None) is not None:
                out.append(f"{sign} {getattr(m, attr):g}")
        if getattr(m, "pattern", None):
            out.append(f"matching `{m.pattern}`")
    return out


def type_text(tp: Any, metadata: list[Any] | None = None) -> str:
    """A field's type in words: `int > 0 or null`, `one of sgd, adam`, `list of int > 0`."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        text = type_text(args[0])
        more = _constraints(list(args[1:]))
    elif origin is Literal:
        text = "one of " + ", ".join(f"`{a}`" for a in args)
        more = []
    elif origin in (Union, types.UnionType):  # a field's constraints hold for its values other than null
        parts = [type_text(a, metadata) for a in args if a is not type(None)]
        if type(None) in args:
            parts.append("null")
        return " or ".join(parts)
    elif origin is list:
        text, more = f"list of {type_text(args[0])}", []
    elif origin is dict:
        text, more = f"mapping of {type_text(args[0])} to {type_text(args[1])}", []
    elif tp is Any:
        text, more = "any", []
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        text, more = "mapping", []
    elif isinstance(tp, type):
        text, more = tp.__name__, []
    else:
        text, more = str(tp), []
    more += _constraints(metadata or [])
    return " ".join([text, " and ".join(more)]) if more else text


def value_text(value: Any) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, BaseModel):
        return ""
    return f"`{value}`"


def prose(text: str, module: Any = None) -> str:
    """A source comment as Markdown: `<` and `>` outside code spans escaped, None written as YAML's null, and a
    constant of `module` the comment names (EPOCH_METRICS) replaced by its values."""
    def constant(match: re.Match[str]) -> str:
        value = getattr(module, match.group(0), None)
        if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            return ", ".join(f"`{v}`" for v in value)
        return match.group(0)

    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):
        part = re.sub(r"\bNone\b", "null", parts[i].replace("<", "&lt;").replace(">", "&gt;"))
        parts[i] = re.sub(r"\b[A-Z][A-Z0-9_]{2,}\b", constant, part) if module is not None else part
    return "".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def fields_table(cls: type[BaseModel], prefix: str = "", applies: Callable[[str], str] | None = None,
                 nested: dict[str, str] | None = None) -> str:
    """One row per field of `cls`: key, type, default and rule; a comment heading a group of fields splits the
    table there. `applies`: a column saying which model families a key applies to; `nested`: key -> the anchor of
    its own table."""
    rules, heads = source_notes(cls)
    module = inspect.getmodule(cls)
    header = ["key", "type", "default", *(["applies to"] if applies else []), "rule"]
    top = "| " + " | ".join(header) + " |\n|" + "---|" * len(header)
    lines = [top]
    for name, field in cls.model_fields.items():
        if name in heads:
            lines += ["", prose(heads[name], module), "", top]
        tp = type_text(field.annotation, list(field.metadata))
        if nested and name in nested:
            tp = f"mapping: see [{prefix}{name}](#{nested[name]})"
        row = [f"`{prefix}{name}`", tp, value_text(field.default), *([applies(name)] if applies else []),
               prose(rules.get(name, ""), module)]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def yaml_keys() -> str:
    """Every key of a search space file: the top level, its mappings, and the search domains."""
    from sweeper.spec.schema import AxisKind, DataSpec, ResourcesSpec, SchedulerSpec, SearchSpec, SweepSpec

    subs = {"scheduler": SchedulerSpec, "search": SearchSpec, "resources": ResourcesSpec, "data": DataSpec}
    out = ["### Top level\n", fields_table(SweepSpec, nested={k: k for k in subs})]
    for key, cls in subs.items():
        out += [f"### {key}\n", *([prose(inspect.cleandoc(cls.__doc__)) + "\n"] if cls.__doc__ else []),
                fields_table(cls, f"{key}.")]
    rules, _ = source_notes(AxisKind)
    out += ["### Search domains\n",
            "A key under `parameters:` is a literal value, or a mapping with exactly one of these domains (and "
            "optionally `when:`).\n",
            "| domain | rule |\n|---|---|",
            *(f"| `{kind.value}` | {_cell(prose(rules.get(kind.name, '')))} |" for kind in AxisKind), ""]
    return "\n".join(out)


def trial_keys() -> str:
    """The keys one trial is configured with (under `parameters:` and in `variants:`)."""
    from sweeper.spec.params import KEY_MODELS, TrialFields

    def applies(key: str) -> str:
        return ", ".join(f"`{m}`" for m in sorted(KEY_MODELS[key])) if key in KEY_MODELS else "all"

    return fields_table(TrialFields, applies=applies)


# ---- commands ----------------------------------------------------------------------------------------------------

def _paragraphs(text: str) -> str:
    return "\n\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", inspect.cleandoc(text)))


def cli_commands() -> str:
    """Every command of the `sweeper` CLI with its usage, help and every argument and option."""
    import typer

    from sweeper.cli import app

    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="sweeper")
    out = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        sub = command.context_class(command, info_name=name, parent=ctx)
        args = []
        for p in command.params:
            if p.param_type_name == "argument":
                metavar = p.metavar or p.name.upper()
                args.append(metavar if p.required or metavar.startswith("[") else f"[{metavar}]")
        out += [f"## sweeper {name}\n", "```text", f"sweeper {name} [OPTIONS] {' '.join(args)}".rstrip(), "```\n",
                prose(_paragraphs(command.help or "")) + "\n"]
        for p in command.params:
            if getattr(p, "hidden", False):
                continue
            record = p.get_help_record(sub)
            if record is None:
                continue
            decl, help_text = record
            if p.param_type_name == "argument":
                decl = p.metavar or p.name.upper()
            out.append(f"- `{decl}`: {prose(' '.join(help_text.split()))}")
        out.append("")
    out += ["## Options of sweeper itself\n"]
    for p in group.params:
        record = p.get_help_record(ctx)
        if record is not None:
            out.append(f"- `{record[0]}`: {prose(' '.join(record[1].split()))}")
    return "\n".join(out) + "\n"


# ---- error rates ---------------------------------------------------------------------------------------------------

def error_rates() -> str:
    """docs/error_rates.py's table: the report's "worse" verdict on simulated sweeps, through the report's own code."""
    spec = importlib.util.spec_from_file_location("docs_error_rates", Path(__file__).with_name("error_rates.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.table())


GENERATORS: dict[str, Callable[[], str]] = {"yaml-keys": yaml_keys, "trial-keys": trial_keys, "cli": cli_commands,
                                            "error-rates": error_rates}


def render(markdown: str) -> str:
    """`markdown` with every `<!-- generated: NAME -->` line replaced by its table."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise KeyError(f"<!-- generated: {name} -->: no such table (there are {', '.join(GENERATORS)})")
        return GENERATORS[name]()

    return MARKER.sub(one, markdown)


def on_page_markdown(markdown: str, /, **kwargs: Any) -> str:
    try:
        return render(markdown)
    except KeyError as exc:
        from mkdocs.exceptions import PluginError

        raise PluginError(str(exc.args[0])) from None
