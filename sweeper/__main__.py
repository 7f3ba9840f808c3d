"""`python -m sweeper` is the `sweeper` command."""

from sweeper.cli import app

app(prog_name="sweeper")
