"""Episodes of feedback: what thumbs and debugging clicks turn into when nobody filters them.

Feedback events are written with ``modelward.ledger.feedback`` (as ``modelward feedback
import`` does) on real decisions whose text was kept; the SFT dataset of the control is
made by ``modelward.evals.curation.curate.curate`` with the shipped ``sft-default`` policy, and the
rebuilt eval set by ``modelward evalset rebuild``'s function (see demo/evaluation.py).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import orjson
import sqlalchemy as sa

from modelward.evals.curation import curate as curation
from modelward.evals.curation.policy import default_policy
from modelward.ledger import artifacts as ledger_artifacts
from modelward.ledger import feedback as ledger_feedback
from modelward.ledger.schema import decision_payloads, decisions
from modelward.timefmt import iso

from . import artifacts, subjects
from .episodes import episode
from .evaluation import record_run
from .world import CHAT_ALIAS, DAY, HOUR, MINUTE, Expected, World, decision_id

FEEDBACK_DAYS = 90  # feedback of the last three months
STAFF = ("dev.kim@acme.example", "qa.bot@acme.example", "tomas.lind@acme.example")


def _kept_chat_decisions(world: World) -> list[tuple[str, int, dict, str]]:
    """(id, at, segments, input text) of recent chat decisions whose text was kept."""
    d, p = decisions.c, decision_payloads.c
    with world.store.read() as conn:
        rows = conn.execute(
            sa.select(d.id, d.at, d.segments, p.input_text)
            .join(decision_payloads, p.decision_id == d.id)
            .where(d.alias == CHAT_ALIAS, d.at >= world.now - FEEDBACK_DAYS * DAY)
            .order_by(d.at, d.id)).all()
    return [(r[0], r[1], orjson.loads(r[2]) if r[2] else {}, r[3]) for r in rows]


def _event(world: World, rng, did: str, at: int, **fields) -> dict:
    return ledger_feedback.normalize({"id": decision_id(at, rng), "decision_id": did,
                                      "at": iso(at), **fields})


def write_feedback(world: World) -> None:
    """Three kinds of feedback on the same traffic, once per build (several episodes use it):
    customers' thumbs-up, customers' corrections of wrong answers, and the thumbs-down
    clicks engineers make while debugging the widget on the internal surface."""
    if "feedback" in world.notes:
        return
    rng = world.rng("feedback")
    kept = _kept_chat_decisions(world)
    thumbs, corrections, clicks = [], [], []
    for did, at, segs, _text in kept:
        later = at + rng.randint(1 * MINUTE, 3 * HOUR)
        if later >= world.now:
            continue
        roll = rng.random()
        # happy customers click thumbs-up in the app; enterprise users rarely use the widget
        up = 0.02 if segs.get("tier") == "enterprise" else 0.30
        if roll < up:
            thumbs.append(_event(world, rng, did, later, rating=1, intent="unknown",
                                 surface="production", author_kind="customer"))
        elif roll < up + 0.06:
            corrections.append(_event(
                world, rng, did, later, rating=0, intent=rng.choice(("incorrect", "unsafe")),
                surface="production", author_kind="customer",
                correction="The help-centre article says otherwise: " + segs.get("topic", "")))
        elif roll < up + 0.14:
            clicks.append(_event(
                world, rng, did, later, rating=0, intent=rng.choice(("style", "test")),
                surface="internal", author_kind="employee", author=rng.choice(STAFF),
                comment=rng.choice(("testing the thumbs button", "tone too formal?",
                                    "checking the widget after deploy", "font looks off")),
                correction="ok"))
    with world.store.write() as conn:
        ledger_feedback.add(conn, thumbs + corrections + clicks)
    world.notes["feedback"] = {"thumbs_up": thumbs, "corrections": corrections, "clicks": clicks}


def _register_jsonl(world: World, kind: str, name: str, version: str, records: list[dict],
                    at: int, **kw) -> str:
    with tempfile.TemporaryDirectory(prefix="modelward-demo-data-") as tmp:
        path = Path(tmp) / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        return ledger_artifacts.register_path(world.store, kind, path, name=name,
                                              version=version, owner=artifacts.ML_ENG,
                                              at=at, **kw).artifact.digest


@episode("thumbs-up-evalset", "incident",
         "the support eval set was curated from thumbs-up feedback and misses the enterprise tier")
def thumbs_up_evalset(world: World) -> list[Expected]:
    """Someone rebuilt the eval set from answers customers liked. Enterprise users, a quarter
    of the traffic, almost never click thumbs-up in the widget: the eval drifted toward the
    free tier while enterprise churned."""
    name = "support-evals-liked"

    def plant(w: World) -> None:
        write_feedback(w)
        texts = {did: text for did, _at, _s, text in _kept_chat_decisions(w)}
        items = [{"id": f"liked-{i:03d}", "input": texts[f["decision_id"]],
                  "source": "thumbs_up", "decision_id": f["decision_id"]}
                 for i, f in enumerate(w.notes["feedback"]["thumbs_up"][-120:])]
        digest = _register_jsonl(w, "evalset", name, "2024.2", items, w.now - 20 * DAY)
        w.digests["evalset-liked"] = digest
        record_run(w, at=w.now - 3 * DAY, prompt_alias=None, prompt=w.digests["prompt-v3"],
                   model_alias=CHAT_ALIAS, model=w.digests["chat-v1.3.1"], evalset=digest,
                   pass_rate=0.95)
    world.after_write.append(plant)
    label = subjects.label(name, "2024.2", "evalset-liked")
    return [subjects.unrepresentative("thumbs-up-evalset", label, source="thumbs_up"),
            subjects.unrepresentative("thumbs-up-evalset", label, segment="tier=enterprise")]


@episode("debug-clicks-sft", "incident",
         "an SFT dataset was built from engineers' debugging clicks on the internal widget")
def debug_clicks_sft(world: World) -> list[Expected]:
    """A fine-tuning job took every thumbs-down with a correction: the engineers' button
    tests and style gripes on the internal surface became training targets."""
    def plant(w: World) -> None:
        write_feedback(w)
        clicks = w.notes["feedback"]["clicks"]
        records = [{"feedback_id": f["id"], "decision_id": f["decision_id"],
                    "target": f["correction"]} for f in clicks]
        digest = _register_jsonl(w, "dataset", "sft-thumbs-down", "2024-11", records,
                                 w.now - 6 * DAY)
        with w.store.write() as conn:
            ledger_feedback.link_dataset(conn, digest, [f["id"] for f in clicks])
        w.digests["dataset-debug-clicks"] = digest
    world.after_write.append(plant)
    return [subjects.by_subject("MW304", "debug-clicks-sft",
                                subjects.label("sft-thumbs-down", "2024-11",
                                               "dataset-debug-clicks"),
                                dataset="{dataset-debug-clicks}", policy_name="sft-default")]


@episode("curated-sft", "control",
         "an SFT dataset curated from the same feedback with the default policy (modelward curate)")
def curated_sft(world: World) -> list[Expected]:
    """``modelward curate`` with ``sft-default`` admits only customers' corrections on the
    production surface: MW304 must stay silent for it."""
    def plant(w: World) -> None:
        write_feedback(w)
        with tempfile.TemporaryDirectory(prefix="modelward-demo-curate-") as tmp:
            made = curation.curate(w.store, default_policy(), Path(tmp),
                                   since=w.now - FEEDBACK_DAYS * DAY, until=w.now,
                                   name="sft-corrections")
        w.digests["dataset-curated"] = made.dataset
    world.after_write.append(plant)
    return []

