"""``modelward verify`` and ``modelward chain head|check``."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from ..display import plural
from ..errors import ModelwardError, ValidationError
from ..ledger import chain as ledger_chain
from ..ledger import checkpoints, heads
from ..registry import parallel_verify
from ._common import JSON_OPTION, err, opened, out, print_json, settings
from ._group import typer_app

chain_app = typer_app(help="The tamper-evident decision log.", no_args_is_help=True)


FULL_OPTION = typer.Option(False, "--full", help="Recompute all history, not only what is "
                           "newer than the newest signed checkpoint.")


def verify_cmd(
    as_json: bool = JSON_OPTION,
    workers: int = typer.Option(1, "--workers", min=1, max=32,
                                help="Worker processes that check ranges of blocks in parallel."),
    full: bool = FULL_OPTION,
    checkpoint: bool = typer.Option(True, "--checkpoint/--no-checkpoint",
                                    help="After a successful verification, store a signed "
                                    "checkpoint (only when a signing key is configured)."),
) -> None:
    """Recompute the chain from the newest signed checkpoint (all of it with --full or
    without a key); exit 0 when intact, 1 naming the first broken block."""
    keys = heads.keys_from(settings())
    with opened() as store:
        with store.read() as conn:
            report = parallel_verify.verify(conn, workers=workers, keys=keys, full=full)
        made = None
        if report.ok and checkpoint and _can_sign(keys):
            try:
                with store.write() as conn:
                    made = checkpoints.store(conn, report, keys)
            except ModelwardError as exc:  # a read-only replica: the verification stands
                report.notes.append(f"no checkpoint stored: {exc}")
    if as_json:
        print_json({**report.to_dict(), "checkpoint_made": made and made.to_dict()})
    elif report.ok:
        rate = report.decisions / report.seconds if report.seconds else 0
        out.print(_intact_line(report) + f" ({rate:,.0f} decisions/s)")
        if made is not None:
            out.print(f"signed checkpoint {made.number} stored at block {made.block}")
        for note in report.notes if keys.configured else ():  # without a key: no news
            err.print("note: " + note)
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


def _can_sign(keys: heads.Keys) -> bool:
    return keys.signing_key is not None or bool(keys.hmac_key)


def _intact_line(report: ledger_chain.VerifyReport) -> str:
    cp = report.checkpoint
    counts = (f"{plural(report.decisions, 'decision')}, {plural(report.records, 'record')}, "
              + (f"{plural(report.retired, 'block')} retired by retention, "
                 if report.retired else "")
              + (f"{plural(report.archived, 'block')} archived to Parquet"
                 + (" (files checked), " if cp is None else " (files checked by --full), ")
                 if report.archived else "")
              + f"head {report.head_root[:16]}…")
    if cp is None:
        return f"chain intact: {plural(report.blocks, 'block')}, {counts}"
    return (f"chain intact: {plural(report.blocks, 'new block')} after signed checkpoint "
            f"{cp['number']} (block {cp['block']}, history last verified in full "
            f"{cp['full_at']}), {counts}")


@chain_app.command("checkpoint")
def checkpoint_cmd(full: bool = FULL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Verify the chain (from the newest signed checkpoint, or all of it with --full) and
    store a new checkpoint signed with the configured key; exit 1 when verification fails,
    2 when no signing key is configured."""
    keys = heads.keys_from(settings())
    checkpoints.signer(keys)  # ConfigError (exit 2) before any work when nobody can sign
    with opened() as store:
        with store.read() as conn:
            report = parallel_verify.verify(conn, keys=keys, full=full)
        made = None
        if report.ok:
            with store.write() as conn:
                made = checkpoints.store(conn, report, keys)
    if not report.ok:
        err.print(_broken_line(report.first_broken))
        raise typer.Exit(1)
    if as_json:
        print_json({"verified": report.to_dict(), "checkpoint": made and made.to_dict()})
    elif made is None:
        out.print("the chain is empty: nothing to checkpoint")
    else:
        out.print(_intact_line(report))
        out.print(f"signed checkpoint {made.number} stored at block {made.block} "
                  f"({made.signer})")


@chain_app.command("head")
def head_cmd(
    out_file: Path = typer.Option(None, "--out", help="Write the head to this file (replaced "
                                  "atomically) instead of printing it."),
    log: Path = typer.Option(None, "--log", help="Also append the head, one JSON line, to "
                             "this heads log (`chain check --heads LOG`)."),
) -> None:
    """Export the chain head (root, blocks, decisions, time) as JSON to keep elsewhere,
    signed with the Ed25519 signing_key_file or the HMAC key in MODELWARD_SIGNING_KEY."""
    st = settings()
    keys = heads.keys_from(st)
    with opened() as store, store.read() as conn:
        exported = heads.head(conn, keys)
    if log is not None:
        heads.append_log(log, exported)
    if out_file is None:
        print_json(exported)
        return
    tmp = out_file.with_name(out_file.name + ".tmp")
    tmp.write_bytes(orjson.dumps(exported, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(out_file)
    out.print(f"head of block {exported['blocks']} written to {out_file}"
              + (f" and appended to {log}" if log is not None else ""))


@chain_app.command("check")
def check_head_cmd(
    exported: Path = typer.Argument(None, help="A head exported earlier."),
    full: bool = FULL_OPTION,
    heads_log: Path = typer.Option(None, "--heads", help="A heads log (`chain head --log`): "
                                   "prove the ledger extends every head in it."),
) -> None:
    """Check that the ledger still extends an exported head, or every head of a heads log
    (exit 1 naming why not). With a key configured, unsigned heads are refused."""
    if exported is None and heads_log is None:
        raise ValidationError("name an exported head, or a heads log with --heads",
                              field="HEAD", hint=heads.HINT)
    keys = heads.keys_from(settings())
    head = logged = None
    if exported is not None:
        head = _read_json(exported)
    if heads_log is not None:
        try:
            logged = heads.read_log(heads_log.read_bytes())
        except OSError as exc:
            raise ValidationError(f"cannot read a heads log from {heads_log}: "
                                  f"{exc.strerror}", field="--heads") from None
    problems = []
    with opened() as store, store.read() as conn:
        if head is not None:
            problems += heads.check(conn, head, keys)
        if logged is not None:
            problems += heads.check_log(conn, logged, keys)
        # extending a head proves nothing if the record itself was edited since
        report = parallel_verify.verify(conn, keys=keys, full=full)
    if not report.ok:
        problems.append(_broken_line(report.first_broken))
    if problems:
        for p in problems:
            err.print(p)
        raise typer.Exit(1)
    signed = " (signatures checked)" if keys.configured else ""
    if head is not None:
        out.print(f"the ledger extends the exported head (block {head.get('blocks')}){signed}")
    if logged is not None:
        out.print(f"the ledger extends all {len(logged)} heads of {heads_log} (blocks "
                  f"{min(h['blocks'] for h in logged)} to {max(h['blocks'] for h in logged)})"
                  f"{signed}")


def _read_json(path: Path):
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValidationError(f"cannot read an exported head from {path}: {exc}") from None


@chain_app.command("keygen")
def keygen_cmd(prefix: Path = typer.Argument(..., help="Writes PREFIX.key (private, 0600) "
                                             "and PREFIX.pub.")) -> None:
    """Make an Ed25519 key pair for signing heads: set signing_key_file to PREFIX.key where
    heads are exported, and give PREFIX.pub (verify_key_file) to whoever checks them."""
    private, public = heads.generate(prefix)
    out.print(f"private key {private} (keep it secret)\npublic key  {public}")


def _broken_line(first: ledger_chain.BlockProblem) -> str:
    where = f"at block {first.block}" if first.block is not None else "outside every block"
    line = f"the ledger fails verification {where}: {first.reason}"
    if first.records:
        line += f" ({first.describe_records()})"
    return line + " (`modelward verify --json` lists every broken block)"


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_cmd)
    app.add_typer(chain_app, name="chain")
