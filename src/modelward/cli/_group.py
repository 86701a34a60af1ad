"""Every Typer app of the CLI is made by :func:`typer_app`: help and usage errors are printed
as click's plain text, not rendered by Rich.

Typer renders help with Rich whenever Rich is installed, importing Rich's console, markdown,
syntax and traceback modules on every ``--help`` and usage error: about 110 ms of CPU on the
development VM, more than the rest of ``modelward --help`` together (docs/benchmarks.md,
``bench/cli_startup.py``). modelward's own output (tables, errors with hints) still uses
Rich where a command prints it."""

from __future__ import annotations

import typer


def typer_app(**kwargs) -> typer.Typer:
    """``typer.Typer(**kwargs)`` with plain-text help (``rich_markup_mode=None``)."""
    return typer.Typer(rich_markup_mode=None, **kwargs)
