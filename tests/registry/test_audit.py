"""audit_decision over every backend: alias history, payloads, text, chain."""

from __future__ import annotations

import pytest

from modelward.errors import UnknownDecisionError, ValidationError
from modelward.ledger import artifacts, decisions
from modelward.registry.audit import audit_decision
from modelward.timefmt import iso

from .conftest import DAY, T0, model, point, record


@pytest.fixture
def rotated(store, tmp_path):
    """chat/v1: m1 from T0+1d, m2 from T0+10d; prompt p1 always."""
    m1 = model(store, tmp_path, b"weights-1", version="v1")
    m2 = model(store, tmp_path, b"weights-2", version="v2")
    p1 = model(store, tmp_path, b"Answer: {q}", name="support", kind="prompt")
    point(store, "chat/v1", m1, T0 + DAY, "first")
    point(store, "chat/v1", m2, T0 + 10 * DAY, "upgrade")
    return m1, m2, p1


def test_agrees_with_the_alias_at_that_moment(store, rotated):
    m1, m2, p1 = rotated
    before, after = record(
        store, {"at": T0 + 5 * DAY, "alias": "chat/v1", "model_digest": m1, "prompt_digest": p1},
        {"at": T0 + 11 * DAY, "alias": "chat/v1", "model_digest": m2})
    r = audit_decision(store, before)
    assert r.ok, r.problems
    assert (r.alias.state, r.alias.digest, r.alias.verdict) == ("resolved", m1, "agrees")
    assert r.alias.since == T0 + DAY and r.alias.event_kind == "create"
    assert r.alias.target.version == "v1"
    assert r.to_dict()["alias"]["target"] == {"kind": "model", "name": "chat", "version": "v1"}
    model_item, prompt_item = r.digests
    assert (model_item.field, model_item.digest, model_item.alias_digest) == ("model", m1, m1)
    assert model_item.artifact.version == "v1" and model_item.payload.status == "present"
    assert model_item.payload.how == "rehashed"
    assert prompt_item.alias_digest is None and prompt_item.artifact.kind == "prompt"
    later = audit_decision(store, after).to_dict()
    assert later["alias"]["digest"] == m2 and later["alias"]["verdict"] == "agrees"
    assert later["digests"][0]["agrees_with_alias"] is True
    b = later["decision"]["block"]  # after the blocks sealing the registrations and moves
    assert later["chain"] == {"block": b, "verifies": True, "links": True, "problem": None,
                              "how": "proof", "verified_at": later["chain"]["verified_at"],
                              "newest_block": b, "links_forward": True,
                              "forward_problem": None, "head": None, "checkpoint": None}


def test_disagreement_names_both_digests_and_when_the_alias_held_the_recorded_one(store, rotated):
    m1, m2, _ = rotated
    (stale,) = record(store, {"at": T0 + 12 * DAY, "alias": "chat/v1", "model_digest": m1})
    r = audit_decision(store, stale)
    assert r.alias.verdict == "disagrees" and r.alias.digest == m2
    assert r.alias.recorded_held == (T0 + DAY, T0 + 10 * DAY)
    assert r.digests[0].alias_digest == m2
    assert r.problems == [{"code": "alias-disagrees", "message":
                           f"model digest {m1} is NOT what chat/v1 pointed to at "
                           f"{iso(T0 + 12 * DAY)} ({m2}); chat/v1 pointed at the recorded digest "
                           f"from {iso(T0 + DAY)} until {iso(T0 + 10 * DAY)}"}]
    assert r.to_dict()["ok"] is False


def test_alias_that_did_not_exist_yet_or_never(store, rotated):
    m1, _, _ = rotated
    early, ghost = record(
        store, {"at": T0, "alias": "chat/v1", "model_digest": m1},
        {"at": T0 + 20 * DAY, "alias": "chat/never", "model_digest": m1})
    r = audit_decision(store, early)
    assert (r.alias.state, r.alias.first_set, r.alias.verdict) == ("not-yet", T0 + DAY, None)
    assert r.problems == [{"code": "alias-not-yet", "message":
                           f"alias chat/v1 did not exist at {iso(T0)}; it was first set at "
                           f"{iso(T0 + DAY)}"}]
    r = audit_decision(store, ghost)
    assert r.alias.state == "unknown"
    assert [p["code"] for p in r.problems] == ["alias-unknown"]


def test_alias_target_kind_not_recorded(store, rotated):
    _, _, p1 = rotated
    (d,) = record(store, {"at": T0 + 11 * DAY, "alias": "chat/v1", "prompt_digest": p1})
    r = audit_decision(store, d)
    assert r.alias.verdict == "not-recorded"
    assert [p["code"] for p in r.problems] == ["alias-digest-not-recorded"]


def test_alias_of_a_kind_decisions_do_not_record(store, tmp_path, rotated):
    m1, _, _ = rotated
    data = model(store, tmp_path, b"rows", name="faq", kind="dataset")
    point(store, "data/faq", data, T0)
    (d,) = record(store, {"at": T0 + DAY, "alias": "data/faq", "model_digest": m1})
    r = audit_decision(store, d)
    assert (r.alias.verdict, r.alias.field, r.alias.artifact_kind) == (
        "not-comparable", None, "dataset")
    assert r.ok and r.digests[0].alias_digest is None


def test_lineage_with_several_parents(store, tmp_path):
    base = model(store, tmp_path, b"base", name="base")
    data = model(store, tmp_path, b"data", name="data", kind="dataset")
    tuned = model(store, tmp_path, b"tuned", name="tuned", parents=[base, (data, "trained-on")])
    (d,) = record(store, {"at": T0 + DAY, "model_digest": tuned})
    parents = audit_decision(store, d).to_dict()["digests"][0]["artifact"]["parents"]
    assert parents == sorted([{"digest": base, "relation": "parent"},
                              {"digest": data, "relation": "trained-on"}],
                             key=lambda p: p["digest"])


def test_unregistered_digest_and_kind_mismatch(store, rotated):
    m1, _, p1 = rotated
    stranger = "sha256:" + "ab" * 32
    (d,) = record(store, {"at": T0 + 5 * DAY, "model_digest": m1, "prompt_digest": m1,
                          "embedder_digest": stranger})
    r = audit_decision(store, d)
    assert r.alias is None
    assert [p["code"] for p in r.problems] == ["kind-mismatch", "unregistered"]
    assert r.digests[2].artifact is None and r.digests[2].payload is None


def test_missing_payload_after_the_blob_is_deleted(store, rotated):
    m1, _, _ = rotated
    (d,) = record(store, {"at": T0 + 5 * DAY, "alias": "chat/v1", "model_digest": m1})
    assert audit_decision(store, d).ok  # fills the verification cache
    store.blobs.delete(m1)
    for quick in (False, True):
        r = audit_decision(store, d, verify_payloads=not quick)
        assert r.digests[0].payload.status == "missing"
        assert r.digests[0].payload.detail == "the blob is not in the store"
        assert [p["code"] for p in r.problems] == ["payload-missing"]
        assert r.payload_mode == ("quick" if quick else "full")


def test_corrupt_blob_is_caught_even_after_a_cached_verification(store, rotated):
    m1, _, _ = rotated
    (d,) = record(store, {"at": T0 + 5 * DAY, "alias": "chat/v1", "model_digest": m1})
    assert audit_decision(store, d).digests[0].payload.how == "rehashed"
    assert audit_decision(store, d).digests[0].payload.how == "cached"
    path = store.blobs.path_of(m1)
    path.write_bytes(b"weights-X")  # same size, other bytes: the cache must not vouch for it
    r = audit_decision(store, d)
    assert r.digests[0].payload.status == "corrupt"
    assert r.digests[0].payload.detail == "the blob's bytes no longer match its digest"
    assert [p["code"] for p in r.problems] == ["payload-corrupt"]
    # quick sees only the size: the same size passes, another size does not
    assert audit_decision(store, d, verify_payloads=False).digests[0].payload.how == "size"
    path.write_bytes(b"short")
    q = audit_decision(store, d, verify_payloads=False).digests[0].payload
    assert (q.status, q.detail) == ("corrupt", "5 bytes on disk, registered with 9")


def test_directory_payload_with_a_missing_file(store, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"layers": 2}')
    (ckpt / "weights.bin").write_bytes(b"w" * 100)
    art = artifacts.register_path(store, "model", ckpt, name="dir", at=T0).artifact
    (d,) = record(store, {"at": T0 + DAY, "model_digest": art.digest})
    r = audit_decision(store, d)
    assert r.ok and r.digests[0].payload.bytes > 113  # two files and the manifest
    store.blobs.delete(artifacts.blob_digests(store, art)[2])
    for quick in (False, True):
        p = audit_decision(store, d, verify_payloads=not quick).digests[0].payload
        assert (p.status, p.detail) == ("missing", "1 of 2 files are gone")


def test_hosted_model_with_a_retirement_date(store):
    now = T0 + 30 * DAY
    gone = artifacts.register_hosted(store, "openai:gpt-4-0314", name="old",
                                     retires_at=T0 + 20 * DAY, at=T0).artifact
    live = artifacts.register_hosted(store, "openai:gpt-4o-2024-08-06", name="new",
                                     retires_at=T0 + 90 * DAY, at=T0).artifact
    a, b = record(
        store, {"at": T0 + DAY, "model_digest": gone.digest, "vendor_model_id": "gpt-4-0314",
                "vendor_fingerprint": "fp_1"},
        {"at": T0 + DAY, "model_digest": live.digest})
    r = audit_decision(store, a, now=now)
    p = r.digests[0].payload
    assert (p.status, p.hosted_id, p.retires_at, p.retired) == (
        "vendor", "openai:gpt-4-0314", T0 + 20 * DAY, True)
    assert r.problems == [{"code": "vendor-retired", "message": f"model {gone.digest}: payload "
                           f"held by the vendor as openai:gpt-4-0314; RETIRED at "
                           f"{iso(T0 + 20 * DAY)} (past)"}]
    assert r.to_dict()["vendor"] == {"model_id": "gpt-4-0314", "fingerprint": "fp_1"}
    r = audit_decision(store, b, now=now)
    assert r.ok and r.digests[0].payload.retired is False


def test_text_kept_then_erased(store, rotated):
    m1, _, _ = rotated
    kept, none = record(
        store, {"at": T0 + 5 * DAY, "model_digest": m1, "subject": "u-1", "input_text": "hi",
                "output_text": "hello"},
        {"at": T0 + 5 * DAY, "model_digest": m1, "subject": "u-2"})
    assert audit_decision(store, kept).text == {"status": "kept", "erased_at": None,
                                                "input": True, "output": True,
                                                "altered": [], "unverifiable": []}
    assert audit_decision(store, none).text["status"] == "none"
    decisions.erase_subject(store, "u-1")
    r = audit_decision(store, kept)
    assert r.text["status"] == "erased" and r.text["erased_at"] is not None
    assert r.chain.verifies and r.ok  # erasing text never breaks the chain


def _tamper(store, decision_id: str, subject: str) -> None:
    with store.write() as conn:
        conn.exec_driver_sql(f"UPDATE decisions SET subject = {store.paramstyle} "
                             f"WHERE id = {store.paramstyle}", (subject, decision_id))


def test_an_edited_decision_fails_its_block(store, rotated):
    m1, _, _ = rotated
    ids = record(store, *({"at": T0 + 5 * DAY, "model_digest": m1, "subject": f"u{i}"}
                          for i in range(150)))
    record(store, {"at": T0 + 6 * DAY, "model_digest": m1})  # block 2 links to block 1
    assert audit_decision(store, ids[10]).chain.how == "recomputed"
    assert audit_decision(store, ids[10]).chain.how == "proof"
    _tamper(store, ids[10], "someone-else")
    r = audit_decision(store, ids[10])  # the proof fails, so the block is recomputed
    assert (r.chain.verifies, r.chain.links, r.chain.how) == (False, True, "recomputed")
    assert r.chain.problem == "decisions do not match the sealed root"
    assert r.problems[0] == {"code": "chain-broken", "message": f"chain block {r.chain.block} fails "
                             "verification: decisions do not match the sealed root; this "
                             "record may have been altered"}
    # any decision of the block reports it, cache or not
    assert not audit_decision(store, ids[140]).chain.verifies
    assert not audit_decision(store, ids[140], use_cache=False).chain.verifies


def test_cached_proof_covers_the_decision_and_its_subtree_not_the_whole_block(store, rotated):
    """The documented trade-off: with a fresh cached recomputation, an edit far away in the
    same block is found by `modelward verify` or --no-cache, not by a cached audit."""
    m1, _, _ = rotated
    ids = record(store, *({"at": T0 + 5 * DAY, "model_digest": m1, "subject": f"u{i}"}
                          for i in range(150)))
    audit_decision(store, ids[0])
    _tamper(store, ids[140], "someone-else")  # another 64-decision subtree
    assert audit_decision(store, ids[0]).chain.how == "proof"
    assert audit_decision(store, ids[0]).chain.verifies
    full = audit_decision(store, ids[0], use_cache=False).chain
    assert (full.verifies, full.how) == (False, "recomputed")
    _tamper(store, ids[5], "neighbour")  # same subtree as ids[0]: the proof fails
    assert not audit_decision(store, ids[0]).chain.verifies


def test_a_broken_link_to_the_previous_block(store, rotated):
    m1, _, _ = rotated
    record(store, {"at": T0 + 5 * DAY, "model_digest": m1})
    (d,) = record(store, {"at": T0 + 6 * DAY, "model_digest": m1})
    with store.read() as conn:
        before = decisions.get(conn, d).block - 1
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE chain_blocks SET root = "
                             f"{store.paramstyle} WHERE number = {before}", ("f" * 64,))
    c = audit_decision(store, d).chain
    assert (c.verifies, c.links) == (True, False)
    assert c.problem == "does not link to the previous block's root"


def test_positions_with_gaps_from_skipped_duplicates(store, rotated):
    """append() skips ids already recorded, leaving gaps in pos; proofs must still hold."""
    m1, _, _ = rotated
    first = record(store, *({"at": T0 + DAY, "model_digest": m1} for _ in range(5)))
    rows = []
    for i in range(200):
        row, _ = decisions.normalize({"at": T0 + 2 * DAY, "model_digest": m1,
                                      "subject": f"s{i}"})
        rows.append(row)
        if i % 40 == 0:  # a retry carrying an old decision: skipped, its pos left empty
            rows.append(decisions.normalize({"id": first[i // 40], "at": T0 + DAY,
                                             "model_digest": m1})[0])
    decisions.append(store, rows)
    block2 = [r[0] for r in rows if r[0] not in first]
    for d in (block2[0], block2[63], block2[64], block2[130], block2[-1]):
        cold = audit_decision(store, d, use_cache=False).chain
        warm = audit_decision(store, d).chain
        assert cold.verifies and warm.verifies and cold.block == _block_of(store, first[0]) + 1
    assert audit_decision(store, block2[-1]).chain.how == "proof"


def test_unknown_and_malformed_ids(store):
    with pytest.raises(UnknownDecisionError, match="no decision '0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70'"):
        audit_decision(store, "0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70")
    with pytest.raises(ValidationError) as info:
        audit_decision(store, "chat/v1")
    assert info.value.field == "decision_id"


def test_a_deleted_decision_anywhere_in_the_block_is_caught_even_when_cached(store, rotated):
    m1, _, _ = rotated
    ids = record(store, *({"at": T0 + 5 * DAY, "model_digest": m1, "subject": f"u{i}"}
                          for i in range(150)))
    assert audit_decision(store, ids[0]).chain.verifies  # keeps the subtree roots
    with store.write() as conn:
        conn.exec_driver_sql(f"DELETE FROM decisions WHERE id = {store.paramstyle}", (ids[140],))
    c = audit_decision(store, ids[0]).chain
    assert (c.verifies, c.how, c.problem) == (False, "recomputed",
                                              "holds 149 decisions, sealed with 150")


def test_a_pinned_hosted_model_served_as_another_is_a_problem(store):
    """The audit (and the dashboard's audit page, which lists these problems) says so when
    the vendor reported another model than the pinned snapshot the decision names; the
    embedder is judged when the decision names no model."""
    pinned = artifacts.register_hosted(store, "openai:gpt-4o-2024-08-06",
                                       name="gpt-4o").artifact.digest
    emb = artifacts.register_hosted(store, "google:text-embedding-004", name="te4",
                                    kind="embedder").artifact.digest
    swapped, fine, embedded = record(
        store, {"at": T0 + DAY, "model_digest": pinned, "vendor_model_id": "gpt-4o-2024-11-20"},
        {"at": T0 + DAY, "model_digest": pinned, "vendor_model_id": "gpt-4o-2024-08-06"},
        {"at": T0 + DAY, "embedder_digest": emb, "vendor_model_id": "text-embedding-005"})
    r = audit_decision(store, swapped)
    assert not r.ok
    [problem] = r.problems
    assert problem == {"code": "vendor-served-other", "message":
                       "model openai:gpt-4o-2024-08-06 is recorded, but the vendor reported "
                       "serving gpt-4o-2024-11-20: this decision did not run on the model it "
                       "names"}
    assert audit_decision(store, fine).ok
    assert [p["code"] for p in audit_decision(store, embedded).problems] == [
        "vendor-served-other"]


def _block_of(store, decision_id):
    with store.read() as conn:
        return decisions.get(conn, decision_id).block
