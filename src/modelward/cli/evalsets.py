"""``modelward evalset compare|rebuild|deprecate``: an eval set's mix against production
traffic; deprecated eval sets no longer count as evidence."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from ..digest import is_digest, of_file
from ..display import percent
from ..errors import UnknownAliasError, ValidationError
from ..timefmt import iso, now_us, parse_duration
from ._common import JSON_OPTION, opened, out, parse_at, print_json, settings
from ._group import typer_app

evalset_app = typer_app(help="Eval sets against production traffic: compare, rebuild; "
                          "deprecate.",
                          no_args_is_help=True)

WINDOW = typer.Option("30d", "--window", help="How far back production traffic is read (30d).")
UNTIL = typer.Option(None, "--until", help="End of the traffic window (ISO 8601 or a duration back "
                     "from now, e.g. 1d; default now).")


def _window(window: str, until: str | None) -> tuple[int, int]:
    end = parse_at(until, "--until") if until else now_us()
    span = parse_duration(window, field="--window")
    if span <= 0:
        raise ValidationError(f"must be longer than 0, got {window!r}", field="--window")
    return end - span, end


def load_items(store, ref: str):
    """(label, digest or None, items) of an eval set named by file, digest or alias."""
    from ..display import short_digest
    from ..evals.harness.evalsets import load_evalset, load_evalset_file
    from ..ledger import aliases, artifacts

    path = Path(ref)
    if not is_digest(ref) and path.is_file():
        items = load_evalset_file(path)
        with store.read() as conn:
            art = artifacts.find(conn, of_file(path))
        if art is None or art.kind != "evalset":
            return str(path), None, items
        return f"{path} = {_name(art)} ({short_digest(art.digest)})", art.digest, items
    with store.read() as conn:
        if is_digest(ref):
            digest = ref
        else:
            try:
                digest = aliases.resolve_at(conn, ref).digest
            except (UnknownAliasError, ValidationError):
                raise ValidationError(f"{ref!r} is not a file, a digest or an alias",
                                      field="EVALSET") from None
        art = artifacts.get(conn, digest)
    if art.kind != "evalset":
        raise ValidationError(f"{ref} is a {art.kind}, not an evalset", field="EVALSET")
    return f"{_name(art)} ({short_digest(digest)})", digest, load_evalset(store, digest)


def _name(art) -> str:
    return f"{art.name}@{art.version}" if art.version else art.name


def _thresholds() -> dict:
    """MW303's options from modelward.toml, so compare flags what `modelward check` fires on."""
    from ..guards import config as check_config
    from ..guards import unrepresentative_evalset as mw303

    s = settings()
    return check_config.load(s).guard_options(mw303.CODE, mw303.OPTIONS, s)


def rows_table(rows: list[list[str]], right=()) -> list[str]:
    """Rows as aligned text columns (indices in ``right`` right-aligned), indented."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [("  " + "  ".join(c.rjust(w) if i in right else c.ljust(w)
                              for i, (c, w) in enumerate(zip(r, widths, strict=True)))).rstrip()
            for r in rows]


def _stats_line(d) -> str:
    if not d.labelled:
        return "  no item carries this key: not judged"
    if d.chi2 is None:
        return "  nothing to test (one category, or no traffic)"
    chi = "inf" if d.chi2 == float("inf") else f"{d.chi2:.2f}"
    line = f"  total variation {d.tvd:.3f} · chi-square {chi}, {d.dof} df, p = {d.p_value:.3g}"
    if d.low_expected:
        n = d.low_expected
        line += f" ({n} categor{'y expects' if n == 1 else 'ies expect'} fewer than 5 items)"
    return line


@evalset_app.command("compare")
def compare_cmd(
    evalset: str = typer.Argument(..., help="Eval set: a file, a digest or an alias."),
    window: str = WINDOW,
    until: str = UNTIL,
    by: str = typer.Option(None, "--by", help="Segment keys, comma-separated (tier,topic); join "
                           "keys with + to compare combined cells (tier+topic). Default: every "
                           "key with at most 50 values."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Compare an eval set's segment and source mix with production decisions."""
    from ..evals.representativeness import compare as rep

    since, end = _window(window, until)
    dims = rep.parse_by(by)
    opts = _thresholds()
    with opened() as store:
        label, digest, items = load_items(store, evalset)
        with store.read() as conn:
            comp = rep.compare(conn, items, since=since, until=end, by=dims)
    under = rep.under_represented(comp, min_traffic_share=opts["min_traffic_share"],
                                  min_ratio=opts["min_ratio"], alpha=opts["alpha"])
    dominant = rep.dominant_sources(comp, sources=opts["feedback_sources"],
                                    max_share=opts["max_source_share"])
    if as_json:
        print_json({"evalset": {"ref": evalset, "digest": digest, "label": label},
                    "window": window, **comp.to_dict(),
                    "thresholds": {k: opts[k] for k in ("min_traffic_share", "min_ratio",
                                                        "alpha", "max_source_share")},
                    "under_represented": [{"by": list(u.dim.dim),
                                           "segment": dict(zip(u.dim.dim, u.share.cell,
                                                               strict=True)),
                                           "p_value": u.p_value,
                                           "adjusted_p_value": u.adjusted}
                                          for u in under],
                    "dominant_sources": [s for s, _n, _sh in dominant]})
        return
    flagged = {(d.dim, s.cell) for d, s in under}
    lines = [f"eval set {label}: {len(items):,} items, {comp.linked:,} linked to decisions",
             f"traffic: {comp.traffic.total:,} decisions from {iso(since)} to {iso(end)}"]
    for d in comp.dimensions:
        rows = [[rep.segment_label(d.dim, s.cell).partition("=")[2] if len(d.dim) == 1
                 else rep.segment_label(d.dim, s.cell),
                 f"{s.traffic:,}", percent(s.traffic_share), f"{s.items:,}", percent(s.eval_share),
                 "-" if s.ratio is None else f"{s.ratio:.2f}",
                 "under-represented" if (d.dim, s.cell) in flagged else ""]
                for s in d.shares]
        lines += ["", "+".join(d.dim) + ": traffic, eval, ratio"]
        lines += rows_table(rows, right=(1, 2, 3, 4, 5))
        lines.append(_stats_line(d))
    lines += ["", "sources:"]
    dom = {s for s, _n, _sh in dominant}
    lines += rows_table([[s or "(none)", f"{n:,}", percent(sh),
                          "most items from one feedback source" if s in dom else ""]
                         for s, n, sh in comp.source_shares()], right=(1, 2))
    out.print("\n".join(lines))


def _default_out(name: str) -> Path:
    return Path(re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "evalset").with_suffix(
        ".jsonl")


@evalset_app.command("rebuild")
def rebuild_cmd(
    size: int = typer.Option(..., "--size", help="Items to draw."),
    stratify: str = typer.Option(None, "--stratify", help="Segment keys whose combined values "
                                 "are the strata, comma-separated (tier,topic)."),
    window: str = WINDOW,
    until: str = UNTIL,
    name: str = typer.Option(..., "--name", help="Name of the evalset artifact."),
    seed: int = typer.Option(None, "--seed", help="Sampling seed (default: random, recorded)."),
    out_file: Path = typer.Option(None, "--out", help="File to write (default NAME.jsonl)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Draw a stratified sample of production decisions, write it as an eval set and
    register it (meta: window, strata, seed, source decision count)."""
    from ..evals.representativeness.compare import segment_label
    from ..evals.representativeness.sampling import rebuild

    since, end = _window(window, until)
    keys = [k.strip() for k in (stratify or "").split(",") if k.strip()]
    path = out_file or _default_out(name)
    with opened() as store:
        res = rebuild(store, size=size, stratify=keys, since=since, until=end, window=window,
                      name=name, out=path, seed=seed)
    if as_json:
        print_json(res.to_dict())
        return
    lines = [f"eval set {name}: {res.items:,} items from {res.source_decisions:,} decisions "
             f"({iso(since)} to {iso(end)}), seed {res.seed}",
             f"{res.digest} written to {res.path}", "strata: traffic, share, items"]
    dim = tuple(keys)
    lines += rows_table([[segment_label(dim, c.cell) if dim else "(all)", f"{c.traffic:,}",
                          f"{c.traffic / res.source_decisions:.1%}", f"{c.items:,}",
                          (f"short {c.ideal - c.items:,}: only {c.eligible:,} with stored text"
                           if c.items < c.ideal else "")]
                         for c in res.cells], right=(1, 2, 3))
    out.print("\n".join(lines))


@evalset_app.command("deprecate")
def deprecate_cmd(
    digest: str = typer.Argument(..., help="sha256: digest of a registered eval set."),
    reason: str = typer.Option(..., "--reason", help="Why it no longer counts as evidence."),
    actor: str = typer.Option(None, "--as", help="Who deprecates it (e-mail)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Deprecate an eval set: evals on it no longer back a promotion (gate ``evalset``) or a
    live alias (MW202). Deprecation is permanent."""
    from ..digest import check_digest
    from ..ledger import artifacts, people, promotions

    check_digest(digest, "DIGEST")
    if not reason.strip():
        raise ValidationError("say why the eval set is deprecated", field="--reason")
    email = people.check_email(actor, "--as") if actor is not None else None
    with opened() as store, store.write() as conn:
        art = artifacts.get(conn, digest)
        if art.kind != "evalset":
            raise ValidationError(f"{digest} is a {art.kind}, not an evalset", field="DIGEST")
        dep, created = promotions.deprecate(conn, digest, reason=reason.strip(), actor=email)
    if as_json:
        print_json({"deprecated": created, **dep.to_dict()})
        return
    what = f"eval set {_name(art)} ({digest})"
    by = f" by {dep.actor}" if dep.actor else ""
    out.print(f"deprecated {what}: {dep.reason}" if created else
              f"{what} was already deprecated at {iso(dep.at)}{by}: {dep.reason}")


def register(app: typer.Typer) -> None:
    app.add_typer(evalset_app, name="evalset")
