"""Eval runs: what an eval actually rendered and called, and the score of every item."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import canonical_json
from ..errors import NotFoundError, ValidationError
from ..ids import uuid7
from ..timefmt import iso, now_us
from .schema import eval_results, eval_runs

RUN_KINDS = ("task", "safety")


@dataclass
class EvalRun:
    id: str
    kind: str
    evalset_digest: str
    prompt_alias: str | None
    prompt_digest: str | None
    model_alias: str | None
    model_digest: str | None
    runner: str | None
    harness_version: str
    scorers: list
    status: str
    started_at: int
    finished_at: int | None
    n_items: int
    summary: dict
    error: str | None
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row) -> EvalRun:
        m = dict(row._mapping)
        m["scorers"] = orjson.loads(m["scorers"]) if m["scorers"] else []
        m["summary"] = orjson.loads(m["summary"]) if m["summary"] else {}
        m["meta"] = orjson.loads(m["meta"]) if m["meta"] else {}
        return cls(**m)

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["started_at"] = iso(self.started_at)
        out["finished_at"] = iso(self.finished_at)
        return out


@dataclass
class ItemResult:
    item_index: int
    item_id: str
    rendered_digest: str | None
    rendered_text: str | None
    output_text: str | None
    output_digest: str | None
    scores: dict
    passed: bool | None
    latency_ms: float | None
    error: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _json(value) -> str | None:
    return canonical_json(value).decode() if value is not None else None


def start_run(conn: Connection, *, evalset_digest: str, prompt_alias: str | None,
              prompt_digest: str | None, model_alias: str | None, model_digest: str | None,
              runner: str | None, harness_version: str, scorers: list, kind: str = "task",
              meta: dict | None = None, at: int | None = None, run_id: str | None = None) -> str:
    if kind not in RUN_KINDS:
        raise ValidationError(f"unknown eval run kind {kind!r}", field="kind")
    run_id = run_id or uuid7()
    conn.execute(eval_runs.insert().values(
        id=run_id, kind=kind, evalset_digest=evalset_digest, prompt_alias=prompt_alias,
        prompt_digest=prompt_digest, model_alias=model_alias, model_digest=model_digest,
        runner=runner, harness_version=harness_version, scorers=_json(scorers),
        status="running", started_at=at if at is not None else now_us(), n_items=0,
        meta=_json(meta or {})))
    return run_id


def add_results(conn: Connection, run_id: str, results: list[ItemResult]) -> None:
    if not results:
        return
    conn.execute(eval_results.insert(), [
        dict(run_id=run_id, item_index=r.item_index, item_id=r.item_id,
             rendered_digest=r.rendered_digest, rendered_text=r.rendered_text,
             output_text=r.output_text, output_digest=r.output_digest,
             scores=_json(r.scores), passed=r.passed, latency_ms=r.latency_ms, error=r.error)
        for r in results])


def finish_run(conn: Connection, run_id: str, *, status: str, n_items: int, summary: dict,
               error: str | None = None, at: int | None = None) -> None:
    conn.execute(eval_runs.update().where(eval_runs.c.id == run_id).values(
        status=status, n_items=n_items, summary=_json(summary), error=error,
        finished_at=at if at is not None else now_us()))


def get_run(conn: Connection, run_id: str) -> EvalRun:
    row = conn.execute(sa.select(eval_runs).where(eval_runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no eval run {run_id!r}", hint="list runs with `modelward eval list`")
    return EvalRun.from_row(row)


def results(conn: Connection, run_id: str) -> list[ItemResult]:
    rows = conn.execute(sa.select(eval_results).where(eval_results.c.run_id == run_id)
                        .order_by(eval_results.c.item_index)).all()
    out = []
    for r in rows:
        m = dict(r._mapping)
        m.pop("run_id")
        m["scores"] = orjson.loads(m["scores"]) if m["scores"] else {}
        out.append(ItemResult(**m))
    return out


def list_runs(conn: Connection, *, kind: str | None = None, status: str | None = None,
              limit: int = 100) -> list[EvalRun]:
    q = sa.select(eval_runs).order_by(eval_runs.c.started_at.desc()).limit(limit)
    if kind:
        q = q.where(eval_runs.c.kind == kind)
    if status:
        q = q.where(eval_runs.c.status == status)
    return [EvalRun.from_row(r) for r in conn.execute(q).all()]


def scored_pairs(conn: Connection, *, kind: str = "task") -> dict[tuple[str | None, str | None], int]:
    """(prompt digest, model digest) pairs a completed run scored, with the latest time."""
    rows = conn.execute(
        sa.select(eval_runs.c.prompt_digest, eval_runs.c.model_digest,
                  sa.func.max(eval_runs.c.finished_at))
        .where(eval_runs.c.status == "completed", eval_runs.c.kind == kind)
        .group_by(eval_runs.c.prompt_digest, eval_runs.c.model_digest)).all()
    return {(p, m): t for p, m, t in rows}
