"""The retrieval incidents of the rollout issue: MW502, MW501 and MW404.

* **kb/search** (MW502): the knowledge-base answerer's reranker gate was pinned at 0.4,
  calibrated on embedder ``kb-embed@1``. The embedder was upgraded to ``kb-embed@2`` (a
  registered alias move) and 0.4 now drops about 37% more candidates. Control:
  **docs/search**, whose policy was recalibrated on the new embedder (``modelward
  threshold recalibrate``), so its cut moved and its pass rate did not.
* **embed/hosted** (MW501, MW404): the hosted embedding model changed its vectors under
  the same name mid-experiment; the weekly fingerprint run caught it with no alias move,
  and the ``search-ranking`` experiment's exposures span both epochs. Control:
  **embed/local**, fingerprinted twice with nothing changed.

Fingerprints are taken by ``modelward.retrieval.fingerprinting.run`` with the demo's
deterministic embedder ``demo.runner:embed``; policies by ``modelward.retrieval.calibration``.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from modelward.ledger import aliases as ledger_aliases
from modelward.ledger import artifacts as ledger_artifacts
from modelward.ledger import decisions as ledger_decisions
from modelward.ledger import experiments as ledger_experiments
from modelward.ledger import people as ledger_people
from modelward.retrieval import calibration, fingerprinting
from modelward.retrieval.embedders import parse_embedder_runner
from modelward.retrieval.probes import load_probes
from modelward.rollout.assignment import Experiment, assign_many

from . import artifacts, runner, subjects
from .episodes import episode
from .lifecycle import _small
from .world import DAY, HOUR, MINUTE, Expected, World, decision_id

KB, DOCS = "kb/search", "docs/search"
HOSTED, LOCAL = "embed/hosted", "embed/local"
UPGRADE_DAYS = 10  # the kb-embed upgrade, this many days ago
ROTATION_DAYS = 8  # the hosted embedder's silent rotation
EXPERIMENT = "search-ranking"


def _embedder(world: World, name: str, version: str) -> str:
    root = world.staging / "embedders" / f"{name}-{version}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"name": name, "version": version}))
    (root / "model.safetensors").write_bytes(world.rng("embedder", name, version).randbytes(4096))
    digest = ledger_artifacts.register_path(world.store, "embedder", root, name=name,
                                            version=version, owner=artifacts.ML_ENG,
                                            at=world.now - 40 * DAY).artifact.digest
    world.digests[f"{name}-{version}"] = digest
    return digest


def _scores(world: World, tmp: str, name: str, n: int, mean: float,
            shift_to: float | None = None) -> Path:
    """Reference scores of a query set (a Beta-like spread around ``mean``)."""
    rng = world.rng("scores", name)
    path = Path(tmp) / f"{name}.jsonl"
    raw = [min(0.99, max(0.01, rng.gauss(mean, 0.12))) for _ in range(n)]
    if shift_to is not None:  # move the spread so the 35% cut is exactly ``shift_to``
        delta = shift_to - sorted(raw, reverse=True)[math.ceil(0.35 * n) - 1]
        raw = [x + delta for x in raw]
    rows = [{"query": f"q{i // 20}", "score": round(x, 6)} for i, x in enumerate(raw)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _gate_decisions(world: World, gate: str, model: str, reranker: str,
                    phases: list[tuple[int, int, str, float, float]]) -> None:
    """One decision every 30 minutes per phase (start, end, embedder, cut, pass rate)."""
    rng = world.rng("gate", gate)
    rows, payloads = [], []
    for start, end, embedder, cut, rate in phases:
        for at in range(start + 7 * MINUTE, end, 30 * MINUTE):
            candidates = rng.randint(24, 40)
            passed = sum(rng.random() < rate for _ in range(candidates))
            row, payload = ledger_decisions.normalize({
                "id": decision_id(at, rng), "at": at, "alias": gate, "process": "pod-kb-1:1",
                "model_digest": model, "embedder_digest": embedder,
                "reranker_digest": reranker, "subject": f"u_{rng.getrandbits(48):012x}",
                "input_digest": f"sha256:{rng.getrandbits(256):064x}",
                "gate": {"threshold": cut, "candidates": candidates, "passed": passed}})
            rows.append(row)
            if payload is not None:
                payloads.append(payload)
    ledger_decisions.append(world.store, rows, payloads, recorded_at=rows[-1][1] + 50_000)
    world.notes["extra_decisions"] = int(world.notes.get("extra_decisions", 0)) + len(rows)


def _gate(world: World, gate: str, recalibrated: bool) -> None:
    w, d = world, world.digests
    name = gate.split("/")[0]
    answerer = _small(w, f"{name}-answerer", "v1", artifacts.ML_ENG, w.now - 45 * DAY)
    e1, e2 = d[f"{name}-embed-1"], d[f"{name}-embed-2"]
    embed_alias = f"embed/{name}"
    upgrade = w.day(UPGRADE_DAYS, "11:00")
    with w.store.write() as conn:
        for alias in (gate, embed_alias):  # named once the embedder upgrade had landed
            ledger_people.set_roles(conn, alias, owners=[artifacts.ML_ENG],
                                    reviewers=[artifacts.ML_LEAD], at=upgrade + HOUR)
        ledger_aliases.set_alias(conn, gate, answerer, actor=artifacts.ML_ENG,
                                 reason=f"{name} answerer", at=w.now - 30 * DAY)
        ledger_aliases.set_alias(conn, embed_alias, e1, actor=artifacts.ML_ENG,
                                 reason="first embedder", at=w.now - 30 * DAY)
    if not recalibrated:  # the cut was tuned by hand on embedder 1 and never revisited
        cut1 = cut2 = 0.4
        with w.store.write() as conn:
            ledger_aliases.set_alias(conn, embed_alias, e2, actor=artifacts.ML_ENG,
                                     reason=f"{name}-embed 2: better recall on the eval",
                                     at=upgrade)
    else:  # a policy keeps 35% of the reference candidates; recalibrated on embedder 2
        policy = f"rag/{name}-gate"
        with tempfile.TemporaryDirectory(prefix="modelward-demo-scores-") as tmp:
            cut1 = calibration.calibrate(
                w.store, policy, _scores(w, tmp, f"{name}-1", 2000, 0.40, 0.45),
                mode="pass_rate", target=0.35, embedder=embed_alias, reranker=d["reranker"],
                actor=artifacts.ML_ENG, at=w.now - 29 * DAY).policy.cut
            cut2 = calibration.recalibrate(
                w.store, policy, _scores(w, tmp, f"{name}-2", 2000, 0.30), embedder=e2,
                actor=artifacts.ML_ENG, reason="re-scored on the new embedder",
                at=upgrade - HOUR).policy.cut
        with w.store.write() as conn:
            ledger_aliases.set_alias(conn, embed_alias, e2, actor=artifacts.ML_ENG,
                                     reason=f"{name}-embed 2, with the recalibrated cut",
                                     at=upgrade)
    _gate_decisions(w, gate, answerer, d["reranker"], [
        (w.now - 20 * DAY, upgrade, e1, cut1, 0.35),
        (upgrade, w.now - HOUR, e2, cut2, 0.35 if recalibrated else 0.22)])


@episode("pinned-gate", "incident",
         "kb/search kept its 0.4 reranker cut across the kb-embed upgrade: ~37% more dropped")
def pinned_gate(world: World) -> list[Expected]:
    for v in ("1", "2"):
        _embedder(world, "kb-embed", v)
    world.after_write.append(lambda w: _gate(w, KB, recalibrated=False))
    return [subjects.by_subject("MW502", "pinned-gate", KB, kind="pass-rate-shift")]


@episode("recalibrated-gate", "control",
         "docs/search recalibrated its gate on the new embedder: the cut moved, the rate held")
def recalibrated_gate(world: World) -> list[Expected]:
    for v in ("1", "2"):
        _embedder(world, "docs-embed", v)
    world.after_write.append(lambda w: _gate(w, DOCS, recalibrated=True))
    return []


# --- a hosted embedder that rotated silently --------------------------------------------
def _fingerprints(world: World, alias: str, hosted_id: str, days_ago: list[int],
                  rotates: int | None) -> str:
    """Register the hosted embedder, point ``alias`` at it, and take the weekly fingerprint
    runs (02:00 on each of ``days_ago``) with the demo embedder; returns its digest."""
    w = world
    digest = ledger_artifacts.register_hosted(w.store, hosted_id, name=alias.split("/")[1],
                                              kind="embedder", owner=artifacts.ML_ENG,
                                              at=w.now - 40 * DAY).artifact.digest
    w.digests[alias] = digest
    with w.store.write() as conn:
        ledger_people.set_roles(conn, alias, owners=[artifacts.ML_ENG],
                                reviewers=[artifacts.ML_LEAD], at=w.now - 40 * DAY)
        ledger_aliases.set_alias(conn, alias, digest, actor=artifacts.ML_ENG,
                                 reason="hosted embeddings", at=w.now - 39 * DAY)
    if rotates is not None:
        runner.ROTATES_AT[hosted_id] = rotates
    embed = parse_embedder_runner("demo.runner:embed")
    probes = load_probes()
    for days in days_ago:
        at = w.day(days, "02:00")
        runner.CLOCK[0] = at
        fingerprinting.run(w.store, alias, embed, probes, repeats=3, at=at)
    return digest


def _rotated(world: World) -> None:
    w = world
    rotation = w.day(ROTATION_DAYS + 1, "14:00")  # caught by the weekly run the next night
    digest = _fingerprints(w, HOSTED, "acme-vendor:embed-large", [22, 15, ROTATION_DAYS, 1],
                           rotation)
    # the search-ranking experiment ran across the rotation, on the hosted embedder
    exp = Experiment(EXPERIMENT, "search-ranking:7f3a", [("control", 50.0), ("treatment", 50.0)])
    with w.store.write() as conn:
        ledger_experiments.create(conn, EXPERIMENT, exp.salt, list(exp.arms),
                                  at=w.now - 15 * DAY)
    users = [f"u-{i}" for i in range(1, 2001)]
    arms = assign_many(exp, users)
    rng = w.rng("exposures", EXPERIMENT)
    start, span = w.now - 14 * DAY, 13 * DAY
    rows = [ledger_experiments.normalize_exposure({
        "experiment": EXPERIMENT, "subject": u, "arm": str(a), "at": start + k * span // 2000,
        "embedder_digest": digest, "model_digest": w.digests["chat-v1.3.1"],
        "metric": float(rng.random() < 0.4)}) for k, (u, a) in enumerate(zip(users, arms,
                                                                              strict=True))]
    ledger_experiments.append_exposures(w.store, rows)


@episode("silent-embedder-rotation", "incident",
         "the hosted embedder changed its vectors mid-experiment, under the same name")
def silent_embedder_rotation(world: World) -> list[Expected]:
    world.after_write.append(_rotated)
    return [subjects.by_subject("MW501", "silent-embedder-rotation", HOSTED),
            subjects.by_subject("MW404", "silent-embedder-rotation", EXPERIMENT)]


@episode("stable-embedder", "control",
         "embed/local, fingerprinted two weeks apart, gave the same vectors both times")
def stable_embedder(world: World) -> list[Expected]:
    world.after_write.append(
        lambda w: _fingerprints(w, LOCAL, "acme-vendor:embed-small", [15, 1], None))
    return []
