"""cli: thin Typer commands. Each parses its options, calls one function of run/, watch/ or report/, and maps
errors to exit codes: 0 ok, 1 the sweep ran but some trials failed, 2 bad input (one line; nothing started,
nothing written), 130 interrupted (state saved; the message names the resume command).

Modules:
  group     OneLineErrors, the command group: a usage error is one line on stderr and exit 2
  common    what every command shares: consoles, --storage and its default, a SweeperError as one line, exit 2
  names     the sweep-name argument, with shell completion of the sweeps under --storage
  running   what launch, resume and extend share: their options, the live view, the outcome and its exit code
  runs      `sweeper launch` and `sweeper resume`
  extend    `sweeper extend`: run only the trials a grown space adds
  watching  `sweeper status` and `sweeper list`
  report    `sweeper report`: comparison tables, files and plots
  export    `sweeper export` (a trained trial as safetensors, model card and ONNX) and `sweeper evaluate`

May import every other package, but torch, ray, pandas and matplotlib only inside the commands that need them,
so `sweeper --help`, `status` and `list` stay fast. Usage errors are one line too (group.py).
"""

from __future__ import annotations

import typer

from sweeper.cli.export import evaluate, export
from sweeper.cli.extend import extend
from sweeper.cli.group import OneLineErrors
from sweeper.cli.report import report
from sweeper.cli.runs import launch, resume
from sweeper.cli.watching import list_sweeps, status

app = typer.Typer(
    cls=OneLineErrors,
    help="Hyperparameter sweeps: YAML search spaces -> Ray Tune (ASHA) -> PyTorch trials -> Parquet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Hyperparameter sweeps: YAML search spaces -> Ray Tune (ASHA) -> PyTorch trials -> Parquet."""


app.command()(launch)
app.command("resume")(resume)
app.command()(extend)
app.command()(report)
app.command()(status)
app.command("list")(list_sweeps)
app.command()(export)
app.command()(evaluate)
