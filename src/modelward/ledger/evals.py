"""Eval runs: what an eval actually rendered and called, and the score of every item."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import canonical_json, non_finite_path
from ..errors import NotFoundError, ValidationError
from ..ids import uuid7
from ..timefmt import iso, now_us
from . import records
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
    served_model_id: str | None = None  # the model id the endpoint reported for this call
    served_fingerprint: str | None = None

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
    records.record(conn, "eval_runs", [run_id])
    return run_id


def add_results(conn: Connection, run_id: str, results: list[ItemResult]) -> None:
    if not results:
        return
    for r in results:
        where = non_finite_path(r.scores)
        if where is not None or (r.latency_ms is not None and not math.isfinite(r.latency_ms)):
            field = f"scores.{where}" if where is not None else "latency_ms"
            raise ValidationError(f"item {r.item_id!r}: NaN and infinity are not scores",
                                  field=field)
    conn.execute(eval_results.insert(), [
        dict(run_id=run_id, item_index=r.item_index, item_id=r.item_id,
             rendered_digest=r.rendered_digest, rendered_text=r.rendered_text,
             output_text=r.output_text, output_digest=r.output_digest,
             scores=_json(r.scores), passed=r.passed, latency_ms=r.latency_ms, error=r.error,
             served_model_id=_clip(r.served_model_id), served_fingerprint=_clip(r.served_fingerprint))
        for r in results])
    records.record(conn, "eval_results", [(run_id, r.item_index) for r in results])


def _clip(value) -> str | None:
    return None if value is None else str(value)[:300]


def served_mix(results, group=None) -> dict:
    """The model ids and fingerprints an endpoint reported over ``results`` (counts), and
    whether they were ``mixed``: a run scored on more than one served model or fingerprint
    measured a mixture. ``group(result)`` splits the count (a safety comparison's base and
    candidate); each group is judged on its own."""
    groups: dict = {}
    for r in results:
        key = group(r) if group else None
        entry = groups.setdefault(key, {"model_ids": {}, "fingerprints": {}, "unreported": 0})
        if r.served_model_id is None and r.served_fingerprint is None:
            if r.output_text is not None:
                entry["unreported"] += 1
            continue
        for what, value in (("model_ids", r.served_model_id),
                             ("fingerprints", r.served_fingerprint)):
            if value is not None:
                entry[what][value] = entry[what].get(value, 0) + 1
    for entry in groups.values():
        entry["mixed"] = len(entry["model_ids"]) > 1 or len(entry["fingerprints"]) > 1
    if group is None:
        return groups.get(None, {"model_ids": {}, "fingerprints": {}, "unreported": 0,
                                 "mixed": False})
    return {"mixed": any(e["mixed"] for e in groups.values()),
            **{str(k): v for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))}}


def finish_run(conn: Connection, run_id: str, *, status: str, n_items: int, summary: dict,
               error: str | None = None, at: int | None = None) -> None:
    conn.execute(eval_runs.update().where(eval_runs.c.id == run_id).values(
        status=status, n_items=n_items, summary=_json(summary), error=error,
        finished_at=at if at is not None else now_us()))
    records.record(conn, "eval_runs", [run_id])


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


# --- the reads behind the gates and the guards (SELECTs only: ``conn`` may be a guard view) ---
def _completed(conn, *conditions) -> list[EvalRun]:
    """Completed runs matching ``conditions``, newest first (ties: the larger id)."""
    c = eval_runs.c
    rows = conn.execute(sa.select(eval_runs).where(c.status == "completed", *conditions)
                        .order_by(c.finished_at.desc(), c.id.desc())).all()
    return [EvalRun.from_row(r) for r in rows]


def runs_scoring(conn: Connection, digest: str, *, kind: str = "task",
                 until: int) -> list[EvalRun]:
    """Completed runs of ``kind`` finished by ``until`` that scored exactly ``digest`` (as
    model or as prompt), newest first."""
    c = eval_runs.c
    return _completed(conn, c.kind == kind, c.finished_at <= until,
                      sa.or_(c.model_digest == digest, c.prompt_digest == digest))


def runs_on_models(conn: Connection, digests: Iterable[str], *, kind: str,
                   until: int) -> dict[str, list[EvalRun]]:
    """Model digest -> the completed runs of ``kind`` on it finished by ``until``, newest
    first (500 digests per query)."""
    wanted = sorted(set(digests))
    c = eval_runs.c
    out: dict[str, list[EvalRun]] = {}
    for i in range(0, len(wanted), 500):
        for run in _completed(conn, c.kind == kind, c.finished_at <= until,
                              c.model_digest.in_(wanted[i:i + 500])):
            out.setdefault(run.model_digest, []).append(run)
    return out


def latest_run_through(conn: Connection, alias: str, *, until: int,
                       kind: str = "task") -> EvalRun | None:
    """The latest completed run of ``kind`` finished by ``until`` that resolved ``alias``
    (as its prompt or its model alias)."""
    c = eval_runs.c
    row = conn.execute(
        sa.select(eval_runs)
        .where(c.status == "completed", c.kind == kind, c.finished_at <= until,
               sa.or_(c.model_alias == alias, c.prompt_alias == alias))
        .order_by(c.finished_at.desc(), c.id.desc()).limit(1)).first()
    return EvalRun.from_row(row) if row else None


LATEST_BY = ("prompt_alias", "model_alias", "model_digest")


def latest_task_runs(conn: Connection, by: str, values: Iterable[str | None]) -> dict[str, object]:
    """Value of column ``by`` (one of :data:`LATEST_BY`) -> the latest completed task run
    with it, as a row of (key, id, finished_at, prompt_alias, prompt_digest, model_alias,
    model_digest); one query."""
    if by not in LATEST_BY:
        raise ValueError(f"latest runs by {by!r}: one of {LATEST_BY}")
    values = sorted({v for v in values if v})
    if not values:
        return {}
    r = eval_runs.c
    column = r[by]
    rn = sa.func.row_number().over(partition_by=column,
                                   order_by=(r.finished_at.desc(), r.id.desc())).label("rn")
    inner = (sa.select(column.label("key"), r.id, r.finished_at, r.prompt_alias,
                       r.prompt_digest, r.model_alias, r.model_digest, rn)
             .where(r.status == "completed", r.kind == "task", column.in_(values))
             .subquery())
    return {row.key: row for row in conn.execute(sa.select(inner).where(inner.c.rn == 1))}


def unfinished_task_runs(conn: Connection, prompt_digests: Iterable[str]) -> list:
    """Task runs of these prompt digests that did not complete (failed, or still running):
    (id, status, started_at, finished_at, error, prompt_digest, model_digest), latest
    started first; one query."""
    digests = sorted({d for d in prompt_digests if d})
    if not digests:
        return []
    r = eval_runs.c
    return conn.execute(
        sa.select(r.id, r.status, r.started_at, r.finished_at, r.error, r.prompt_digest,
                  r.model_digest)
        .where(r.status != "completed", r.kind == "task", r.prompt_digest.in_(digests))
        .order_by(r.started_at.desc(), r.id.desc())).all()


def evalsets_run(conn: Connection, *, since: int | None, until: int) -> list[str]:
    """The eval sets completed runs started in [since, until] used."""
    r = eval_runs.c
    return list(conn.execute(sa.select(r.evalset_digest).distinct().where(
        r.status == "completed", r.started_at >= since if since is not None else sa.true(),
        r.started_at <= until)).scalars())


def completed_runs_started(conn: Connection, *, since: int | None, until: int) -> list:
    """(id, evalset_digest, prompt_digest, prompt_alias) of every completed run started in
    [since, until], the latest started first."""
    r = eval_runs.c
    return conn.execute(
        sa.select(r.id, r.evalset_digest, r.prompt_digest, r.prompt_alias)
        .where(r.status == "completed",
               r.started_at >= since if since is not None else sa.true(),
               r.started_at <= until)
        .order_by(r.started_at.desc(), r.id.desc())).all()


def rendered_prompts(conn: Connection, run_id: str) -> list[tuple[str, str]]:
    """(item id, rendered text) of every item of a run that recorded its rendered prompt,
    in item order."""
    e = eval_results.c
    return [tuple(r) for r in conn.execute(
        sa.select(e.item_id, e.rendered_text)
        .where(e.run_id == run_id, e.rendered_text.is_not(None))
        .order_by(e.item_index)).all()]
