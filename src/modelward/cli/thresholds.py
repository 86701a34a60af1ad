"""``modelward threshold calibrate|recalibrate|show|list``: threshold policies."""

from __future__ import annotations

import typer

from ..errors import ValidationError
from ..timefmt import iso
from ._common import JSON_OPTION, opened, out, parse_at, print_json
from ._group import typer_app

threshold_app = typer_app(help="Retrieval-gate cuts as target pass rates, recalibrated on "
                            "substrate change.", no_args_is_help=True)

SCORES = typer.Option(..., "--scores", help="Reference scores: JSONL/CSV with query id and "
                      "score, a JSON list, or one number per line.")
EMBEDDER = typer.Option(None, "--embedder", help="Embedder the scores came from (alias or "
                        "digest, resolved now).")
RERANKER = typer.Option(None, "--reranker", help="Reranker the scores came from (alias or "
                        "digest, resolved now).")
ACTOR = typer.Option(None, "--actor", help="Who calibrates (e-mail).")
REASON = typer.Option(None, "--reason", help="Why (kept in the history).")
AT = typer.Option(None, "--at", help="Record it at this time (ISO 8601 or a duration back "
                   "from now; default now).")


def _say(text: str) -> None:
    out.print(text)


def _target(p) -> str:
    if p.mode == "pass_rate":
        return f"pass rate {p.target:.2%}"
    return f"quantile {p.target:g} (pass rate {1 - p.target:.2%})"


def _substrate(p) -> str:
    parts = [f"{k} {v['ref'] + ' = ' if v.get('ref') else ''}{v['digest']}"
             for k, v in sorted(p.substrate.items())]
    return "; ".join(parts) if parts else "no substrate recorded"


def _print_calibration(c) -> None:
    p = c.policy
    _say(f"{p.name} v{p.version}: cut {p.cut:.6g} ({_target(p)}; {c.pass_rate:.2%} of "
         f"{c.scores} reference scores pass)")
    if c.previous is not None:
        _say(f"old cut {c.previous.cut:.6g} (v{c.previous.version}) -> new cut {p.cut:.6g}; "
             f"the old cut would pass {c.old_cut_pass_rate:.2%} of the new reference scores")
    _say(f"reference {p.reference_digest}")
    _say(f"substrate: {_substrate(p)}")


@threshold_app.command("calibrate")
def calibrate_cmd(
    name: str = typer.Argument(..., help="Policy name, e.g. rag/support-gate."),
    scores: str = SCORES,
    rate: float = typer.Option(None, "--target-pass-rate",
                               help="Share of reference candidates that should pass (0-1]."),
    q: float = typer.Option(None, "--quantile", help="Cut at this quantile of the scores [0-1)."),
    embedder: str = EMBEDDER, reranker: str = RERANKER, actor: str = ACTOR,
    reason: str = REASON, at: str = AT, as_json: bool = JSON_OPTION,
) -> None:
    """Store a new policy: the cut that lets the target share of reference scores pass."""
    from ..retrieval import calibration

    if (rate is None) == (q is None):
        raise ValidationError("give exactly one of --target-pass-rate and --quantile",
                              field="--target-pass-rate")
    mode, target = ("pass_rate", rate) if rate is not None else ("quantile", q)
    with opened() as store:
        result = calibration.calibrate(store, name, scores, mode=mode, target=target,
                                       embedder=embedder, reranker=reranker, actor=actor,
                                       reason=reason, at=parse_at(at))
    print_json(result.to_dict()) if as_json else _print_calibration(result)


@threshold_app.command("recalibrate")
def recalibrate_cmd(
    name: str = typer.Argument(...), scores: str = SCORES, embedder: str = EMBEDDER,
    reranker: str = RERANKER, actor: str = ACTOR, reason: str = REASON, at: str = AT,
    as_json: bool = JSON_OPTION,
) -> None:
    """New version on new reference scores: same pass rate, new absolute cut."""
    from ..retrieval import calibration

    with opened() as store:
        result = calibration.recalibrate(store, name, scores, embedder=embedder,
                                         reranker=reranker, actor=actor, reason=reason,
                                         at=parse_at(at))
    print_json(result.to_dict()) if as_json else _print_calibration(result)


@threshold_app.command("show")
def show_cmd(name: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """A policy's versions, oldest first."""
    from ..ledger import thresholds as ledger_thresholds

    with opened() as store, store.read() as conn:
        ledger_thresholds.latest(conn, name)  # NotFoundError with a hint
        versions = ledger_thresholds.history(conn, name)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    for v in versions:
        prev = f" (was {v.previous_cut:.6g})" if v.previous_cut is not None else ""
        who = f" by {v.actor}" if v.actor else ""
        why = f" ({v.reason})" if v.reason else ""
        _say(f"v{v.version}  {iso(v.at)}  cut {v.cut:.6g}{prev}  {_target(v)}{who}{why}")
        _say(f"    reference {v.reference_digest}; substrate: {_substrate(v)}")


@threshold_app.command("list")
def list_cmd(as_json: bool = JSON_OPTION) -> None:
    """Every policy at its latest version."""
    from ..ledger import thresholds as ledger_thresholds

    with opened() as store, store.read() as conn:
        policies = ledger_thresholds.list_latest(conn)
    if as_json:
        print_json([p.to_dict() for p in policies])
        return
    if not policies:
        _say("no threshold policies")
    for p in policies:
        _say(f"{p.name:<32}  v{p.version}  cut {p.cut:.6g}  {_target(p)}  since {iso(p.at)}")


def register(app: typer.Typer) -> None:
    app.add_typer(threshold_app, name="threshold")
