"""``build(path)``: the Acme support ledger, from an empty directory to a finished story."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import modelward
from modelward.ledger import aliases as ledger_aliases
from modelward.ledger import decisions as ledger_decisions
from modelward.timefmt import now_us

from . import artifacts, traffic
from .catalogue import EPISODES
from .episodes import Episode
from .world import (
    CHAT_ALIAS,
    DAY,
    HOUR,
    MINUTE,
    PROMPT_ALIAS,
    SEED,
    SUMMARY_ALIAS,
    TRIAGE_ALIAS,
    AliasMove,
    Expected,
    VendorReport,
    World,
)

BLOCK = 2000  # most decisions per chain block, as the recorder's flush_records default
FLUSH_DELAY = 50_000  # a block is recorded 50 ms after its last decision (flush_interval)
MARKER = ".modelward-demo"  # marks a directory build() made, so a rebuild may delete it


@dataclass
class BuildResult:
    path: Path
    now: int
    digests: dict[str, str]
    expected: list[Expected]
    episodes: list[Episode]
    decisions: int
    blocks: int
    by_alias: dict[str, int]
    audit_decision_id: str
    audit_alias_digest: str  # what chat/v1 pointed to when that decision was made
    moves: list[AliasMove] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)  # what episodes left for the story


def plan_baseline(world: World) -> None:
    """Day one and the routine rotations: C1 -> C2 -> C3, the hosted models, the prompt."""
    created = world.workday(242, "10:00")
    artifacts.register_baseline(world, created)
    world.move(CHAT_ALIAS, "chat-v1.0", created, "first release", artifacts.ML_LEAD)
    world.move(PROMPT_ALIAS, "prompt-v1", created, "first release", artifacts.PROMPT_OWNER)
    world.move(SUMMARY_ALIAS, "gpt-4o-mini", created, "ticket summaries", artifacts.ML_ENG)
    world.move(TRIAGE_ALIAS, "claude-haiku", created, "ticket triage", artifacts.ML_ENG)
    world.vendor_reports[SUMMARY_ALIAS] = [
        VendorReport(created, "gpt-4o-mini-2024-07-18", "fp_0ba0d124f1")]
    world.vendor_reports[TRIAGE_ALIAS] = [VendorReport(created, "claude-3-5-haiku-20241022", None)]
    for version, step, days_ago, clock, reason in (
            ("v1.1", 6000, 200, "14:00", "v1.1: monthly refresh with last month's tickets"),
            ("v1.2", 8000, 140, "14:30", "v1.2: adds the enterprise SSO runbook")):
        previous = "chat-v1.0" if version == "v1.1" else "chat-v1.1"
        at = world.workday(days_ago, clock)
        artifacts.checkpoint(world, version, step=step, at=at - 44 * HOUR, owner=artifacts.ML_LEAD,
                             parent=previous, notes=f"refresh at step {step}")
        world.move(CHAT_ALIAS, f"chat-{version}", at, reason, artifacts.ML_LEAD)


def _prepare(path: Path) -> None:
    """Delete a previous demo ledger; refuse to touch a directory that is something else."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a demo ledger: refusing to delete it")
    if path.is_dir() and not (path / MARKER).is_file() and any(path.iterdir()):
        raise FileExistsError(f"{path} is not empty and was not made by the demo "
                              f"(no {MARKER} in it): refusing to delete it")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("built by demo/build.py; `make demo` deletes and rebuilds it\n")


def _write_aliases(world: World) -> None:
    with world.store.write() as conn:
        for mv in sorted(world.moves, key=lambda m: (m.at, m.alias)):
            if mv.break_glass:  # written by its episode, once the reviewers exist
                continue
            ledger_aliases.set_alias(conn, mv.alias, mv.digest, reason=mv.reason,
                                     actor=mv.actor, at=mv.at)


def _write_decisions(world: World, decisions: list[dict]) -> int:
    """Normalise each decision as the recorder does and seal them the way a batching
    recorder would have: one block per clock hour of traffic (at most 2000 decisions),
    recorded just after the block's last decision. One transaction for the whole backfill."""
    blocks = 0
    batches: list[list[dict]] = []
    for d in decisions:
        last = batches[-1] if batches else None
        if last and len(last) < BLOCK and last[0]["at"] // HOUR == d["at"] // HOUR:
            last.append(d)
        else:
            batches.append([d])
    with world.store.write(chain=True) as conn:
        for batch in batches:
            rows, payloads = [], []
            for d in batch:
                row, payload = ledger_decisions.normalize(d)
                rows.append(row)
                if payload is not None:
                    payloads.append(payload)
            ledger_decisions.append_in(conn, world.store, rows, payloads,
                                       recorded_at=rows[-1][1] + FLUSH_DELAY)
            blocks += 1
    return blocks


def _audit_pick(world: World, decisions: list[dict]) -> dict:
    """A chat decision from the first month whose text was kept: the one the auditor asks about."""
    lo, hi = world.start + 12 * DAY, world.start + 30 * DAY
    for d in decisions:
        if (lo <= d["at"] < hi and d["alias"] == CHAT_ALIAS and "input_text" in d
                and (d["at"] // MINUTE) % 60 >= 15):
            return d
    raise RuntimeError("no first-month chat decision with kept text")


def build(path: Path | str, *, seed: int = SEED, now: int | None = None,
          episodes: list[Episode] | None = None) -> BuildResult:
    """Build the demo ledger at ``path`` (deleted first) and return what it planted."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    path = Path(path).resolve()
    _prepare(path)
    now = (now_us() if now is None else now) // MINUTE * MINUTE
    ledger = modelward.open(str(path), database_url=f"sqlite:///{path / 'ledger.db'}",
                            blob_url=str(path / "blobs"), spool_dir=str(path / "spool"))
    try:
        with tempfile.TemporaryDirectory(prefix="modelward-demo-") as staging:
            world = World(ledger.store, now, Path(staging), seed=seed)
            plan_baseline(world)
            expected: list[Expected] = []
            chosen = EPISODES if episodes is None else episodes
            for ep in chosen:
                expected += ep.plant(world)
            timings["artifacts"] = time.perf_counter() - t0
        _write_aliases(world)
        t1 = time.perf_counter()
        decisions = traffic.generate(world)
        timings["traffic"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        blocks = _write_decisions(world, decisions)
        timings["write"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        for hook in world.after_write:
            hook(world)
        expected = [e.resolved(world.digests) for e in expected]
        timings["episodes"] = time.perf_counter() - t1
        audit = _audit_pick(world, decisions)
        with ledger.store.read() as conn:
            then = ledger_aliases.resolve_at(conn, CHAT_ALIAS, audit["at"]).digest
    finally:
        ledger.close()
    by_alias: dict[str, int] = {}
    for d in decisions:
        by_alias[d["alias"]] = by_alias.get(d["alias"], 0) + 1
    return BuildResult(path=path, now=now, digests=dict(world.digests), expected=expected,
                       episodes=list(chosen),
                       decisions=len(decisions) + int(world.notes.get("extra_decisions", 0)),
                       blocks=blocks, by_alias=by_alias, audit_decision_id=audit["id"],
                       audit_alias_digest=then, moves=list(world.moves),
                       seconds=time.perf_counter() - t0, timings=timings,
                       notes=dict(world.notes))
