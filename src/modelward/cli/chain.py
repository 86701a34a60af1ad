"""``modelward verify`` and ``modelward chain head|check``."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from ..display import plural
from ..errors import ValidationError
from ..ledger import chain as ledger_chain
from ..registry import parallel_verify
from ._common import JSON_OPTION, err, opened, out, print_json, settings

chain_app = typer.Typer(help="The tamper-evident decision log.", no_args_is_help=True)


def verify_cmd(
    as_json: bool = JSON_OPTION,
    workers: int = typer.Option(1, "--workers", min=1, max=32,
                                help="Worker processes that check ranges of blocks in parallel."),
) -> None:
    """Recompute every chain block; exit 0 when intact, 1 naming the first broken block."""
    with opened() as store, store.read() as conn:
        report = parallel_verify.verify(conn, workers=workers)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        rate = report.decisions / report.seconds if report.seconds else 0
        out.print(f"chain intact: {plural(report.blocks, 'block')}, "
                  f"{plural(report.decisions, 'decision')}, {plural(report.records, 'record')}, "
                  f"head {report.head_root[:16]}… ({rate:,.0f} decisions/s)")
    else:
        first = report.first_broken
        where = (f"at block {first.block}" if first.block is not None
                 else "outside every block")
        err.print(f"chain BROKEN {where}: {first.reason}")
        if first.records:
            err.print("records: " + first.describe_records())
        if first.decision_ids:
            shown = first.decision_ids[:20]
            err.print("decisions in that block: " + ", ".join(shown)
                      + (f" … (+{len(first.decision_ids) - 20})" if len(first.decision_ids) > 20 else ""))
        if len(report.problems) > 1:
            err.print(f"{len(report.problems) - 1} more broken blocks (see --json)")
    if not report.ok:
        raise typer.Exit(1)


@chain_app.command("head")
def head_cmd() -> None:
    """Export the chain head (root, blocks, decisions, time) as JSON to keep elsewhere;
    signed with HMAC-SHA256 when MODELWARD_SIGNING_KEY is set."""
    with opened() as store, store.read() as conn:
        print_json(ledger_chain.head(conn, key_env=settings().signing_key_env))


@chain_app.command("check")
def check_head_cmd(exported: Path = typer.Argument(..., help="A head exported earlier.")) -> None:
    """Check that the ledger still extends an exported head and that it verifies (exit 1
    naming what was rewritten)."""
    try:
        head = orjson.loads(exported.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValidationError(f"cannot read an exported head from {exported}: {exc}") from None
    with opened() as store, store.read() as conn:
        problems = ledger_chain.check_head(conn, head, key_env=settings().signing_key_env)
        # extending the head proves nothing if the record itself was edited since
        report = parallel_verify.verify(conn)
    if not report.ok:
        problems.append(_broken_line(report.first_broken))
    if problems:
        for p in problems:
            err.print(p)
        raise typer.Exit(1)
    out.print(f"the ledger extends the exported head (block {head.get('blocks')})")


def _broken_line(first: ledger_chain.BlockProblem) -> str:
    where = f"at block {first.block}" if first.block is not None else "outside every block"
    line = f"the ledger fails verification {where}: {first.reason}"
    if first.records:
        line += f" ({first.describe_records()})"
    return line + " (`modelward verify --json` lists every broken block)"


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_cmd)
    app.add_typer(chain_app, name="chain")
