"""A small ledger holding two rows of every chained table, each written through the
ledger's own write paths (so each is sealed as it would be in production)."""

from __future__ import annotations

from modelward.ledger import (
    acks,
    aliases,
    artifacts,
    closures,
    decisions,
    evals,
    experiments,
    fingerprints,
    people,
    promotions,
    records,
    retention,
    retirement,
    thresholds,
)
from modelward.ledger import feedback as ledger_feedback
from modelward.ledger.closures import ClosureRow
from modelward.ledger.evals import ItemResult
from modelward.ledger.fingerprints import Fingerprint
from modelward.ledger.schema import archived_blocks, archives
from modelward.ledger.thresholds import PolicyVersion

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
SEC = 1_000_000


def build(store) -> dict:
    """Write the world; returns the handles tests need (digests, ids)."""
    base = artifacts.register_bytes(store, "model", b"base weights", name="base",
                                    at=T0).artifact.digest
    data = artifacts.register_bytes(store, "dataset", b"training rows", name="rows",
                                    at=T0 + 1).artifact.digest
    tuned = artifacts.register_bytes(store, "adapter", b"adapter weights", name="tuned",
                                     parents=[(base, "base"), (data, "trained-on")],
                                     at=T0 + 2).artifact.digest
    evalset = artifacts.register_bytes(store, "evalset", b'{"q": 1}\n', name="qa",
                                       at=T0 + 3).artifact.digest
    curated = artifacts.register_bytes(store, "dataset", b"curated", name="curated",
                                       at=T0 + 4).artifact.digest
    people.sync(store, [{"email": "ana@example.com", "status": "active", "name": "Ana"},
                        {"email": "bo@example.com", "status": "active", "name": "Bo",
                         "team": "ml"}], at=T0 + 5)
    rows, payloads = [], []
    for i, subject in enumerate(("u1", "u2", "u3")):
        row, payload = decisions.normalize({"at": T0 + 100 * SEC + i, "subject": subject,
                                            "model_digest": base,
                                            "input_text": f"question {i}",
                                            "output_text": f"answer {i}"})
        rows.append(row)
        payloads.append(payload)
    decisions.append(store, rows, payloads)
    decision_ids = [r[0] for r in rows]
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v1", base, actor="ana@example.com", at=T0 + 10)
        aliases.set_alias(conn, "chat/v1", tuned, actor="bo@example.com", at=T0 + 20,
                          reason="better")
        people.set_roles(conn, "chat/v1", owners=["ana@example.com"], at=T0 + 30)
        people.set_roles(conn, "chat/v1", reviewers=["bo@example.com"], at=T0 + 31)
        retention.place_hold(conn, base, "litigation", "ana@example.com", T0 + 40)
        retention.place_hold(conn, tuned, "audit", "bo@example.com", T0 + 41)
        runs = []
        for i, model in enumerate((base, tuned)):
            run_id = evals.start_run(conn, evalset_digest=evalset, prompt_alias=None,
                                     prompt_digest=None, model_alias="chat/v1",
                                     model_digest=model, runner=None, harness_version="1",
                                     scorers=["exact"], at=T0 + 50 + i)
            evals.add_results(conn, run_id, [
                ItemResult(j, f"item-{j}", None, f"rendered {j}", f"out {j}", None,
                           {"exact": float(j)}, bool(j), 10.0 + j + i, None)
                for j in range(2)])
            evals.finish_run(conn, run_id, status="completed", n_items=2,
                             summary={"exact": 0.5 + i}, at=T0 + 60 + i)
            runs.append(run_id)
        promotions.record_open(conn, runs[0], "ana@example.com", at=T0 + 70)
        promotions.record_open(conn, runs[1], "bo@example.com", via=promotions.OPEN_VIA[-1], at=T0 + 71)
        promotions.deprecate(conn, evalset, reason="leaked", actor="ana@example.com",
                             at=T0 + 72)
        promotions.deprecate(conn, curated, reason="stale", at=T0 + 73)
        reqs = [promotions.insert_request(conn, alias="chat/v1", digest=d,
                                          requester="ana@example.com", at=T0 + 80 + i)
                for i, d in enumerate((base, tuned))]
        promotions.set_status(conn, reqs[1].id, "approved")
        promotions.add_review(conn, request_id=reqs[0].id, approver="bo@example.com",
                              at=T0 + 90, outcome="refused", failed_gates=[{"gate": "eval"}])
        promotions.add_review(conn, request_id=reqs[1].id, approver="bo@example.com",
                              at=T0 + 91, outcome="approved", failed_gates=[])
        for i, out in enumerate((tuned, None)):
            closures.insert(conn, ClosureRow(digest=f"sha256:{i + 1:064x}", output_digest=out,
                                             name=f"train-{i}", created_at=T0 + 95 + i,
                                             exit_code=i, complete=not i, base_digest=base,
                                             inputs=[data]))
        experiments.create(conn, "colour", "salt-1", [("a", 1.0), ("b", 1.0)], at=T0 + 100)
        experiments.create(conn, "size", "salt-2", [("s", 1.0), ("l", 3.0)], at=T0 + 101)
        for i, model in enumerate((base, tuned)):
            fingerprints.insert(conn, Fingerprint(
                id=f"00000000-0000-7000-8000-00000000000{i}", embedder_alias="emb/v1",
                embedder_digest=model, at=T0 + 110 + i, probes_digest=data,
                vectors_digest=curated, repeats=3, dims=8, noise_floor=0.01 * (i + 1),
                vendor_model_id=None, epoch=i, baseline_id=None,
                verdict="baseline" if i == 0 else "changed", magnitude=None if i == 0 else 0.4,
                summary={"n": i}))
            thresholds.insert(conn, PolicyVersion(
                name="gate", version=i + 1, at=T0 + 120 + i, mode="pass_rate",
                target=0.8 + 0.05 * i, cut=0.3 + 0.1 * i,
                previous_cut=None if i == 0 else 0.3, reference_digest=data,
                substrate={"embedder": model}, actor="ana@example.com"))
        fb = [ledger_feedback.normalize({"decision_id": decision_ids[i], "rating": 1.0 - i,
                                         "surface": "production", "author_kind": "customer",
                                         "comment": f"comment {i}", "at": T0 + 130 + i})
              for i in range(2)]
        ledger_feedback.add(conn, fb)
        ledger_feedback.link_dataset(conn, curated, [f["id"] for f in fb])
    experiments.append_exposures(store, [experiments.normalize_exposure(
        {"experiment": "colour", "subject": f"u{i}", "arm": "ab"[i], "at": T0 + 140 + i,
         "model_digest": base, "metric": 0.5 * i}) for i in range(2)])
    decisions.erase_subject(store, "u1")
    decisions.erase_subject(store, "u2")
    with store.write() as conn:  # two retirements (of record blocks: nothing is dropped)
        retirement.mark(conn, [2], before=T0, now=T0 + 150, method="rows")
        retirement.mark(conn, [3], before=T0 + 1, now=T0 + 151, method="partition")
    with store.write() as conn:  # two archive records (of record blocks: nothing dropped)
        for i in range(2):
            aid = conn.execute(archives.insert().values(
                at=T0 + 152 + i, before_at=T0, url=f"file:///srv/archive{i}",
                digest="sha256:" + f"{i}" * 64, bytes=1000 + i, first_block=4 + i,
                last_block=4 + i, decisions=0, refs='{"sha256:x": [1, 2, 3]}'),
            ).inserted_primary_key[0]
            conn.execute(archived_blocks.insert().values(
                block=4 + i, archive=aid, root="0" * 64, count=0, min_id=f"a{i}",
                max_id=f"b{i}"))
            records.record(conn, "archives", [aid])
            records.record(conn, "archived_blocks", [4 + i])
    with store.write() as conn:  # who silenced which finding (chained)
        for i in range(2):
            acks.add(conn, key=f"{i:016x}", code="MW101", actor="ana@example.com",
                     reason=f"known {i}", at=T0 + 150 + i, until=T0 + 10**9 if i else None)
    return {"base": base, "tuned": tuned, "decisions": decision_ids, "runs": runs,
            "feedback": [f["id"] for f in fb]}
