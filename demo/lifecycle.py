"""Episodes of the model-lifecycle issue: people, promotions and training closures.

The roster, owners and reviewers go through ``modelward.ledger.people``, promotions through
``modelward.registry.promotion`` (request, open, approve: the gates and the review record
are the real ones), and the closure of the control is captured by
``modelward.registry.closure.capture.capture`` running a tiny deterministic training script in a
throw-away git repository.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from modelward.ledger import aliases as ledger_aliases
from modelward.ledger import artifacts as ledger_artifacts
from modelward.ledger import people as ledger_people
from modelward.ledger import promotions as ledger_promotions
from modelward.registry import promotion
from modelward.registry.closure import capture as closure

from . import artifacts, subjects
from .episodes import episode
from .evaluation import record_run, support_evalset
from .world import (
    CHAT_ALIAS,
    DAY,
    HOUR,
    MINUTE,
    PROMPT_ALIAS,
    SUMMARY_ALIAS,
    TRIAGE_ALIAS,
    Expected,
    World,
)

DEPARTED = "jonas.berg@acme.example"  # built the router; left Acme in September
TEAM = {artifacts.ML_LEAD: "Maya Chen", artifacts.ML_ENG: "Tomas Lind",
        artifacts.PROMPT_OWNER: "Priya Raman", artifacts.PLATFORM: "Platform on-call",
        DEPARTED: "Jonas Berg"}
ROUTER, ESCALATION, TAGGER, INTENT = "router/v1", "escalation/v1", "tagger/v1", "intent/v1"
LIVE_ALIASES = (CHAT_ALIAS, PROMPT_ALIAS, SUMMARY_ALIAS, TRIAGE_ALIAS, ROUTER, ESCALATION,
                TAGGER, INTENT)


def _small(world: World, name: str, version: str, owner: str, at: int, **kw) -> str:
    """Register a small model directory (config + seeded weights) and remember it."""
    root = world.staging / "models" / f"{name}-{version}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"name": name, "version": version}))
    (root / "model.safetensors").write_bytes(world.rng("model", name, version).randbytes(8192))
    digest = ledger_artifacts.register_path(world.store, "model", root, name=name,
                                            version=version, owner=owner, at=at,
                                            **kw).artifact.digest
    world.digests[f"{name}-{version}"] = digest
    return digest


def reviewers_named(w: World) -> int:
    """When the team named reviewers of record for its live aliases: a month ago."""
    return w.now - 30 * DAY


@episode("team-roster", "control",
         "the roster and the owners and reviewers of record of every live alias")
def team_roster(world: World) -> list[Expected]:
    """Every live alias has an active reviewer, every live artifact an active owner, except
    what the promotion incident plants: MW201 stays silent for the rest."""
    def plant(w: World) -> None:
        joined = w.start
        ledger_people.sync(w.store, [{"email": e, "name": n, "team": "ml", "status": "active"}
                                     for e, n in TEAM.items()], at=joined)
        with w.store.write() as conn:
            for alias in LIVE_ALIASES:
                owner = DEPARTED if alias == ROUTER else artifacts.ML_LEAD
                # named after the September incidents: from then on these aliases are
                # protected, and move through promotions (or a recorded break-glass)
                ledger_people.set_roles(conn, alias, owners=[owner],
                                        reviewers=[artifacts.ML_LEAD, artifacts.PLATFORM],
                                        at=reviewers_named(w))
        ledger_people.sync(w.store, [{"email": DEPARTED, "status": "left"}],
                           at=w.now - 70 * DAY)
    world.after_write.insert(0, plant)  # before anything is promoted
    return []


@episode("rubber-stamp-promotion", "incident",
         "router v2 promoted at 23:43 with --override: owner gone, deprecated benchmark, eval unread")
def rubber_stamp_promotion(world: World) -> list[Expected]:
    """Jonas built the support router and left. His v2 was promoted late one night: the
    only evidence was a six-week-old run on router-bench-2023, deprecated since, and the
    approver overrode the gates without opening it."""
    v1 = _small(world, "support-router", "v1", DEPARTED, world.start + 2 * DAY)
    world.move(ROUTER, "support-router-v1", world.start + 3 * DAY, "first router", DEPARTED)
    v2 = _small(world, "support-router", "v2", DEPARTED, world.now - 50 * DAY)
    path = world.staging / "evals" / "router-bench-2023.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"rb-{i}", "input": f"route ticket {i}",
                                        "expected": "billing"}) + "\n" for i in range(20)))
    bench = ledger_artifacts.register_path(world.store, "evalset", path,
                                           name="router-bench-2023", owner=DEPARTED,
                                           at=world.start).artifact.digest
    night = world.day(4, "23:43")

    def plant(w: World) -> None:
        run = record_run(w, at=w.now - 45 * DAY, prompt_alias=None, prompt=None,
                         model_alias=ROUTER, model=v2, evalset=bench, pass_rate=0.9)
        with w.store.write() as conn:
            ledger_promotions.deprecate(conn, bench, reason="superseded by router-bench-2024",
                                        actor=artifacts.ML_LEAD, at=w.now - 30 * DAY)
        req = promotion.request(w.store, ROUTER, v2, artifacts.ML_ENG, evidence_run_id=run,
                                reason="router v2", at=night - 4 * MINUTE)
        promotion.approve(w.store, req.id, artifacts.PLATFORM, override=True,
                          reason="needed before the morning release", at=night)
    world.after_write.append(plant)
    _ = v1
    return [subjects.by_subject("MW201", "rubber-stamp-promotion", ROUTER,
                                email=DEPARTED, problem="owner-inactive"),
            subjects.by_subject("MW201", "rubber-stamp-promotion", v2, email=DEPARTED,
                                problem="artifact-owner-inactive"),
            subjects.stale_evidence("rubber-stamp-promotion", ROUTER, "fresh"),
            subjects.by_subject("MW203", "rubber-stamp-promotion", ROUTER, digest=v2,
                                approver=artifacts.PLATFORM)]


@episode("clean-promotion", "control",
         "escalation v2 promoted by a reviewer who opened fresh evidence on it and took 25 min")
def clean_promotion(world: World) -> list[Expected]:
    """Every gate passes without an override: MW201, MW202 and MW203 stay silent."""
    _small(world, "escalation-classifier", "v1", artifacts.ML_ENG, world.start + 2 * DAY)
    world.move(ESCALATION, "escalation-classifier-v1", world.start + 3 * DAY,
               "hand upset customers to an agent", artifacts.ML_ENG)
    v2 = _small(world, "escalation-classifier", "v2", artifacts.ML_ENG, world.now - 12 * DAY)

    def plant(w: World) -> None:
        support_evalset(w)
        run = record_run(w, at=w.now - 10 * DAY, prompt_alias=None, prompt=None,
                         model_alias=None, model=v2)
        asked = w.day(9, "10:05")
        req = promotion.request(w.store, ESCALATION, v2, artifacts.ML_ENG,
                                evidence_run_id=run, reason="escalation v2", at=asked)
        with w.store.write() as conn:
            ledger_promotions.record_open(conn, run, artifacts.ML_LEAD, at=asked + 2 * HOUR)
        result = promotion.approve(w.store, req.id, artifacts.ML_LEAD,
                                   at=asked + 2 * HOUR + 25 * MINUTE)
        if result.outcome != "approved":
            raise RuntimeError(f"the clean promotion was {result.outcome}: "
                               f"{[f.gate for f in result.evaluation.failures]}")
    world.after_write.append(plant)
    return []


# --- training closures -------------------------------------------------------------------
TRAIN_SCRIPT = '''\
"""Train the ticket intent classifier: a deterministic toy (counts words per intent)."""
import json, random, sys
random.seed(17)
rows = [json.loads(line) for line in open(sys.argv[1])]
weights = {}
for row in rows:
    for word in row["text"].lower().split():
        weights.setdefault(row["intent"], {}).setdefault(word, 0)
        weights[row["intent"]][word] += 1
open(sys.argv[2], "w").write(json.dumps(weights, sort_keys=True))
'''
TRAIN_DATA = [{"text": t, "intent": i} for t, i in (
    ("charged twice this month", "billing"), ("refund my invoice", "billing"),
    ("export button broken", "bug"), ("app crashes on login", "bug"),
    ("how do I add a teammate", "howto"), ("turn on sso", "howto"),
    ("change my email address", "account"), ("delete my account", "account"))]


@episode("untraceable-fine-tune", "incident",
         "the ticket tagger in production was trained on a laptop: no closure, nobody can rebuild it")
def untraceable_fine_tune(world: World) -> list[Expected]:
    """The tagger's weights were uploaded by hand from a notebook run; its code, data,
    lock file and seeds are nowhere."""
    tagger = _small(world, "ticket-tagger", "v3", artifacts.ML_ENG, world.now - 60 * DAY,
                    meta={"trained": True, "notes": "trained in a notebook"})
    world.move(TAGGER, "ticket-tagger-v3", world.now - 58 * DAY, "tagger v3", artifacts.ML_ENG)
    return [subjects.by_digest("MW204", "untraceable-fine-tune", tagger, problem="no-closure")]


@episode("captured-closure", "control",
         "the intent classifier was trained under `modelward closure capture` (code, data, seeds)")
def captured_closure(world: World) -> list[Expected]:
    """A complete closure whose every part is retained: MW204 stays silent."""
    def plant(w: World) -> None:
        with tempfile.TemporaryDirectory(prefix="modelward-demo-train-") as tmp:
            repo = Path(tmp)
            (repo / "train.py").write_text(TRAIN_SCRIPT)
            (repo / "requirements.txt").write_text("# the toy trainer needs the stdlib only\n")
            (repo / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TRAIN_DATA))
            git = ["git", "-c", "user.name=Acme CI", "-c", "user.email=ci@acme.example"]
            for args in (["init", "-q"], ["add", "train.py", "requirements.txt"],
                         ["commit", "-q", "-m", "intent trainer"]):
                subprocess.run(git + args, cwd=repo, check=True, capture_output=True)
            spec = closure.CaptureSpec(
                name="intent-classifier", command=[sys.executable, "train.py", "data.jsonl",
                                                   "intent.json"],
                output=Path("intent.json"), inputs=("data.jsonl",), seeds=(17,), cwd=repo)
            made = closure.capture(w.store, spec, sink=lambda _b: None)
        if made.closure.status != "complete" or made.artifact is None:
            raise RuntimeError(f"the demo's closure capture is {made.closure.status}: "
                               f"{made.record.get('gaps')}")
        w.digests["intent-classifier"] = made.artifact.digest
        with w.store.write() as conn:
            ledger_aliases.set_alias(conn, INTENT, made.artifact.digest, actor=artifacts.ML_ENG,
                                     reason="intent classifier, captured training",
                                     at=w.now - 2 * DAY)
    world.after_write.append(plant)
    return []
