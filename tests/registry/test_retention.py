"""Retention, gc and holds over every backend: gc deletes only what nothing keeps."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from modelward.errors import NotFoundError, UnknownArtifactError, ValidationError
from modelward.ledger import artifacts, chain, decisions
from modelward.ledger import retention as ledger_retention
from modelward.ledger.schema import holds as holds_table
from modelward.registry.audit import audit_decision
from modelward.registry.payloads import check_payload
from modelward.registry.retention import gc, hold, list_holds, release, retention_report

from .conftest import DAY, T0, model, point, record

NOW = T0 + 500 * DAY  # window (400d) starts at T0 + 100d; gc_grace (7d) at T0 + 493d


def _by_digest(report):
    return {i.artifact.digest: i for i in report.artifacts}


def _present(store, digest):
    with store.read() as conn:
        art = artifacts.get(conn, digest)
    return store.blobs.has(digest), art.payload_deleted_at


@pytest.fixture
def world(store, tmp_path):
    """base <- tuned (aliased now); used (decision in window); old (decision outside window);
    held (hold); orphan (nothing); fresh (registered inside gc_grace)."""
    d = {}
    d["base"] = model(store, tmp_path, b"base", name="base")
    d["tuned"] = model(store, tmp_path, b"tuned", name="tuned", parents=[d["base"]],
                       kind="adapter")
    d["previous"] = model(store, tmp_path, b"previous", name="previous")
    d["used"] = model(store, tmp_path, b"used", name="used")
    d["old"] = model(store, tmp_path, b"old", name="old")
    d["held"] = model(store, tmp_path, b"held", name="held")
    d["orphan"] = model(store, tmp_path, b"orphan", name="orphan")
    d["fresh"] = model(store, tmp_path, b"fresh", name="fresh", at=NOW - DAY)
    point(store, "chat/v1", d["previous"], T0)
    point(store, "chat/v1", d["tuned"], T0 + 50 * DAY)
    record(store, {"at": T0 + 300 * DAY, "model_digest": d["used"]},
           {"at": T0 + 310 * DAY, "model_digest": d["used"]},
           {"at": T0 + 10 * DAY, "model_digest": d["old"]},
           {"at": T0 + 20 * DAY, "model_digest": d["previous"]})
    hold(store, d["held"], "legal matter 7", "counsel@example.com", at=T0)
    return d


def test_report_says_why_each_artifact_is_kept(store, world):
    items = _by_digest(retention_report(store, now=NOW))
    w = world
    assert items[w["used"]].kept_by == ["decisions"]
    assert (items[w["used"]].decisions, items[w["used"]].last_referenced) == (2, T0 + 310 * DAY)
    assert items[w["tuned"]].kept_by == ["alias"] and items[w["tuned"]].aliases == ["chat/v1"]
    assert items[w["base"]].kept_by == ["lineage"]
    assert items[w["base"]].lineage_of == [w["tuned"]]
    assert items[w["held"]].kept_by == ["hold"]
    assert items[w["held"]].holds[0].reason == "legal matter 7"
    assert items[w["fresh"]].kept_by == ["new"]
    for name in ("old", "previous", "orphan"):  # outside the window, a past alias target
        assert items[w[name]].kept_by == [] and not items[w[name]].kept, name
    assert items[w["old"]].decisions == 0
    assert all(i.payload.status == "present" and i.payload.how == "size"
               for i in items.values())
    as_dict = retention_report(store, now=NOW).to_dict()
    assert as_dict["window_since"] == "2026-04-11T00:00:00Z"
    assert {a["name"]: a["kept_by"] for a in as_dict["artifacts"]}["base"] == ["lineage"]


def test_lineage_is_transitive_and_holds_keep_their_lineage(store, tmp_path, world):
    grand = model(store, tmp_path, b"grand", name="grand")
    parent = model(store, tmp_path, b"parent", name="parent", parents=[grand])
    child = model(store, tmp_path, b"child", name="child", parents=[parent])
    hold(store, child, "keep the chain of training", at=T0)
    items = _by_digest(retention_report(store, now=NOW))
    assert items[grand].kept_by == ["lineage"] and items[grand].lineage_of == [child]
    assert items[parent].lineage_of == [child] and items[child].kept_by == ["hold"]


def test_dry_run_deletes_nothing(store, world):
    report = gc(store, dry_run=True, now=NOW)
    assert report.dry_run
    assert sorted(i.artifact.name for i in report.items) == ["old", "orphan", "previous"]
    assert all(i.marked for i in report.items) and report.bytes == len(b"oldorphanprevious")
    for name in ("old", "orphan", "previous"):
        assert _present(store, world[name]) == (True, None)


def test_gc_deletes_only_what_nothing_keeps(store, world):
    report = gc(store, now=NOW)
    assert sorted(i.artifact.name for i in report.items) == ["old", "orphan", "previous"]
    assert report.kept == 5 and report.bytes == len(b"oldorphanprevious")
    for name in ("old", "orphan", "previous"):
        assert _present(store, world[name]) == (False, NOW), name
    for name in ("base", "tuned", "used", "held", "fresh"):
        assert _present(store, world[name]) == (True, None), name
    # the second run has nothing left to do
    again = gc(store, now=NOW)
    assert again.items == [] and again.kept == 5


def test_audit_after_gc_says_deleted(store, world):
    with store.read() as conn:
        (old_decision,) = [d for d in decisions.search(conn, limit=10)
                           if d.model_digest == world["old"]]
    gc(store, now=NOW)
    p = audit_decision(store, old_decision.id).digests[0].payload
    assert (p.status, p.deleted_at) == ("missing", NOW)
    assert p.describe() == ("MISSING: the blob is not in the store (deleted by gc at "
                            "2027-05-16T00:00:00Z)")


def test_released_hold_no_longer_keeps(store, world):
    (h,) = list_holds(store)
    released = release(store, h.id, "matter closed", "counsel@example.com", at=T0 + 1)
    assert (released.active, released.release_reason) == (False, "matter closed")
    assert list_holds(store) == []
    assert [x.id for x in list_holds(store, include_released=True)] == [h.id]
    deleted = {i.artifact.name for i in gc(store, now=NOW).items}
    assert "held" in deleted
    with store.read() as conn:  # append-only: the hold row is untouched, the release added
        rows = conn.execute(sa.select(holds_table).order_by(holds_table.c.id)).all()
    assert [(r.digest, r.reason, r.releases) for r in rows] == [
        (world["held"], "legal matter 7", None), (world["held"], "matter closed", h.id)]


def test_a_decision_inside_the_window_keeps_what_it_names(store, world):
    record(store, {"at": NOW - DAY, "model_digest": world["orphan"]})
    deleted = {i.artifact.name for i in gc(store, now=NOW).items}
    assert deleted == {"old", "previous"}
    assert _present(store, world["orphan"]) == (True, None)


def test_references_after_a_block_only_count_later_blocks(store, world):
    with store.read() as conn:
        before = chain.last_block(conn)[0]
    record(store, {"at": T0 + 200 * DAY, "model_digest": world["orphan"]})
    with store.read() as conn:
        late = ledger_retention.decision_references(conn, since=T0, after_block=before)
        everything = ledger_retention.decision_references(conn, since=T0)
    assert set(late) == {world["orphan"]}
    assert everything[world["used"]].count == 2


def test_directory_blobs_shared_with_a_kept_artifact_survive(store, tmp_path):
    def ckpt(name, files):
        root = tmp_path / name
        root.mkdir()
        for f, data in files.items():
            (root / f).write_bytes(data)
        return artifacts.register_path(store, "model", root, name=name, at=T0).artifact

    kept = ckpt("kept", {"tokenizer.json": b"shared-tokenizer", "w.bin": b"kept-weights"})
    gone = ckpt("gone", {"tokenizer.json": b"shared-tokenizer", "w.bin": b"gone-weights!"})
    twin = model(store, tmp_path, b"shared-tokenizer", name="twin")  # same bytes as a file
    point(store, "chat/v1", kept.digest, T0)
    report = gc(store, now=NOW)
    by_name = {i.artifact.name: i for i in report.items}
    assert set(by_name) == {"gone", "twin"}
    actions = {(b.role, b.action) for b in by_name["gone"].blobs}
    assert actions == {("manifest", "deleted"), ("directory file", "deleted"),
                       ("directory file", "shared")}
    assert by_name["gone"].marked and not by_name["twin"].marked
    assert by_name["twin"].note == "kept: a kept artifact occupies the same blob"
    assert store.blobs.has(twin)  # the shared tokenizer blob stays
    assert not store.blobs.has(gone.digest)
    with store.read() as conn:
        kept_art = artifacts.get(conn, kept.digest)
    assert check_payload(store, kept_art, now=NOW).status == "present"


def test_hold_validation(store, world):
    with pytest.raises(UnknownArtifactError):
        hold(store, "sha256:" + "0" * 64, "why")
    with pytest.raises(ValidationError) as info:
        hold(store, "chat/v1", "why")
    assert info.value.field == "digest"
    with pytest.raises(ValidationError) as info:
        hold(store, world["orphan"], "  ")
    assert info.value.field == "reason"
    (h,) = list_holds(store)
    with pytest.raises(NotFoundError):
        release(store, 999, "why")
    release(store, h.id, "done")
    with pytest.raises(ValidationError, match="already released"):
        release(store, h.id, "again")


def test_a_blob_two_deleted_payloads_share_is_counted_once(store, tmp_path):
    for name in ("a", "b"):
        root = tmp_path / name
        root.mkdir()
        (root / "common.bin").write_bytes(b"common-bytes")
        (root / "own.bin").write_bytes(name.encode() * 10)
        artifacts.register_path(store, "model", root, name=name, at=T0)
    report = gc(store, now=NOW)
    assert [i.marked for i in report.items] == [True, True]
    common = [b for i in report.items for b in i.blobs if b.size == len(b"common-bytes")]
    assert len(common) == 2 and {b.action for b in common} == {"deleted"}
    manifests = sum(i.blobs[0].size for i in report.items)
    assert report.bytes == manifests + len(b"common-bytes") + 20
    assert sum(i.bytes for i in report.items) == report.bytes + len(b"common-bytes")
