"""The decisions list over every backend: keyset pages in a stable (at, id) order, filters,
the alias verdict the audit gives, and the streamed CSV / JSON-lines export."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from modelward.errors import ValidationError
from modelward.ledger import aliases, decision_pages
from modelward.ledger.decision_pages import Filter
from modelward.registry.audit import audit_decision
from modelward.registry.decision_list import (
    CSV_COLUMNS,
    export,
    filter_of,
    list_decisions,
    safe_cell,
    stream_listed,
)

from .conftest import DAY, T0, model, point, record


@pytest.fixture
def world(store, tmp_path):
    """chat/v1: m1 from T0+1d, m2 from T0+10d, deleted at T0+20d. Nine decisions, three
    sharing one time (ties broken by id), one stale (names m1 after the move)."""
    m1 = model(store, tmp_path, b"weights-1", version="v1")
    m2 = model(store, tmp_path, b"weights-2", version="v2")
    p1 = model(store, tmp_path, b"Answer: {q}", name="support", kind="prompt")
    point(store, "chat/v1", m1, T0 + DAY)
    point(store, "chat/v1", m2, T0 + 10 * DAY)
    with store.write() as conn:
        aliases.delete_alias(conn, "chat/v1", at=T0 + 20 * DAY)
    ds = [{"at": T0 + 2 * DAY, "alias": "chat/v1", "model_digest": m1, "process": "pod-a"},
          *({"at": T0 + 5 * DAY, "alias": "chat/v1", "model_digest": m1, "process": "pod-b",
             "prompt_digest": p1} for _ in range(3)),
          {"at": T0 + 11 * DAY, "alias": "chat/v1", "model_digest": m2, "process": "pod-a",
           "vendor_model_id": "acme:chat-2"},
          {"at": T0 + 12 * DAY, "alias": "chat/v1", "model_digest": m1, "process": "pod-b"},
          {"at": T0 + 12 * DAY + 1, "alias": "chat/v1", "prompt_digest": p1},
          {"at": T0 + 21 * DAY, "alias": "chat/v1", "model_digest": m2},
          {"at": T0 + 3 * DAY, "model_digest": m1, "subject": "=HYPERLINK(\"http://x\")",
           "process": "+cmd|' /C calc'!A0"}]
    ids = record(store, *ds)
    return {"m1": m1, "m2": m2, "p1": p1, "ids": ids}


def _walk(store, flt, limit):
    out, cursor = [], None
    while True:
        page = list_decisions(store, flt, cursor=cursor, limit=limit)
        out += [i.decision.id for i in page.items]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def test_pages_walk_every_decision_once_newest_first_ties_by_id(store, world):
    with store.read() as conn:
        rows = conn.exec_driver_sql("SELECT at, id FROM decisions").all()
    expected = [i for _at, i in sorted(rows, reverse=True)]
    for limit in (1, 2, 3, 4, 100):
        assert _walk(store, Filter(), limit) == expected
    first = list_decisions(store, Filter(), limit=4)
    assert len(first.items) == 4 and first.next_cursor
    assert list_decisions(store, Filter(), limit=9).next_cursor is None


def test_a_decision_recorded_between_pages_does_not_shift_the_next_page(store, world):
    first = list_decisions(store, Filter(), limit=3)
    later = list_decisions(store, Filter(), cursor=first.next_cursor, limit=3)
    record(store, {"at": T0 + 30 * DAY, "alias": "chat/v1", "model_digest": world["m2"]})
    again = list_decisions(store, Filter(), cursor=first.next_cursor, limit=3)
    assert [i.decision.id for i in again.items] == [i.decision.id for i in later.items]


def test_filters_by_process_digest_alias_and_time(store, world):
    m1, p1 = world["m1"], world["p1"]

    def ids(**kw):
        return {i.decision.id for i in list_decisions(store, filter_of(**kw), limit=100).items}

    everything = set(world["ids"])
    assert ids(process="pod-b") == {world["ids"][i] for i in (1, 2, 3, 5)}
    assert ids(digest=p1) == {world["ids"][i] for i in (1, 2, 3, 6)}  # any digest field
    assert ids(digest=m1, process="pod-a") == {world["ids"][0]}
    assert ids(alias="chat/v1") == everything - {world["ids"][8]}
    from modelward.timefmt import iso
    assert ids(since=iso(T0 + 5 * DAY), until=iso(T0 + 11 * DAY)) == {
        world["ids"][i] for i in (1, 2, 3)}
    assert ids(alias="  ", process="") == everything  # blank form fields are no filter
    with pytest.raises(ValidationError) as exc:
        filter_of(digest="sha256:nothex")
    assert exc.value.field == "digest"
    with pytest.raises(ValidationError) as exc:
        filter_of(since="last tuesday")
    assert exc.value.field == "since"


def test_the_verdict_is_the_audits_and_the_target_is_targets_at(store, world):
    listed = {i.decision.id: i for i in list_decisions(store, Filter(), limit=100).items}
    for i, id_ in enumerate(world["ids"]):
        item = listed[id_]
        report = audit_decision(store, id_, verify_payloads=False)
        if report.alias is None:
            assert (item.alias_digest, item.verdict) == (None, None), i
        elif report.alias.state == "resolved":
            assert (item.alias_digest, item.verdict) == (report.alias.digest,
                                                         report.alias.verdict), i
        else:
            assert (item.alias_digest, item.verdict) == (None, "unresolved"), i
    ids = world["ids"]
    assert [listed[ids[i]].verdict for i in (0, 4, 5, 6, 7, 8)] == [
        "agrees", "agrees", "disagrees", "not-recorded", "unresolved", None]
    d = listed[ids[4]].to_dict()
    assert d["alias_digest"] == world["m2"] and d["alias_verdict"] == "agrees"
    assert d["vendor_model_id"] == "acme:chat-2"


@pytest.mark.parametrize("cursor", ["", "x", "djE6MTox", "v1:1:0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70",
                                    "dj|6", "A" * 200])
def test_a_cursor_not_made_here_is_refused(store, world, cursor):
    with pytest.raises(ValidationError) as exc:
        decision_pages.decode_cursor(cursor)
    assert exc.value.field == "cursor"
    if cursor:
        with pytest.raises(ValidationError):
            list_decisions(store, Filter(), cursor=cursor)


def test_the_cursor_round_trips_and_names_no_more_than_a_position(store, world):
    page = list_decisions(store, Filter(), limit=2)
    at, id_ = decision_pages.decode_cursor(page.next_cursor)
    assert id_ == page.items[-1].decision.id and at == page.items[-1].decision.at
    assert "=" not in page.next_cursor and "/" not in page.next_cursor


def test_export_streams_in_batches_and_matches_the_pages(store, world):
    batches = list(stream_listed(store, Filter(), batch=2))
    assert [len(b) for b in batches] == [2, 2, 2, 2, 1]
    assert [i.decision.id for b in batches for i in b] == _walk(store, Filter(), 100)
    lines = b"".join(export(store, filter_of(process="pod-b"), "jsonl", batch=2)).splitlines()
    rows = [orjson.loads(line) for line in lines]
    assert [r["id"] for r in rows] == _walk(store, filter_of(process="pod-b"), 100)
    assert {r["alias_verdict"] for r in rows} == {"agrees", "disagrees"}
    text = b"".join(export(store, Filter(), "csv", batch=3)).decode()
    table = list(csv.reader(io.StringIO(text)))
    assert tuple(table[0]) == CSV_COLUMNS and len(table) == 10
    empty = b"".join(export(store, filter_of(process="nobody"), "csv")).decode()
    assert empty.splitlines() == [",".join(CSV_COLUMNS)]  # a header, no rows
    with pytest.raises(ValidationError) as exc:
        export(store, Filter(), "xlsx")
    assert exc.value.field == "format"


def test_csv_cells_cannot_start_a_formula(store, world):
    text = b"".join(export(store, filter_of(subject='=HYPERLINK("http://x")'), "csv")).decode()
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["subject"] == "'=HYPERLINK(\"http://x\")"
    assert row["process"] == "'+cmd|' /C calc'!A0"
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(cell).startswith("'")
    assert safe_cell("sha256:ab") == "sha256:ab" and safe_cell(None) == ""
