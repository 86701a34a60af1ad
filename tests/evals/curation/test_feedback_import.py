"""Feedback events: the SDK call and `modelward feedback import` (JSON lines and CSV), all
or nothing, on every backend."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from typer.testing import CliRunner

from modelward.cli.app import app
from modelward.errors import ValidationError
from modelward.evals.curation.feedback import import_feedback, parse_feedback
from modelward.ledger import feedback as ledger_feedback
from tests.evals.mix import T0, record

GHOST = "01890000-0000-7000-8000-000000000000"
INTENTS = "incorrect, unsafe, unhelpful, style, test, other, unknown"


def _decisions(store, n=3) -> list[str]:
    return record(store, [dict(at=T0 + i, input_text=f"q{i}", output_text=f"a{i}")
                          for i in range(n)])


def _stored(store) -> list[ledger_feedback.Feedback]:
    with store.read() as conn:
        return ledger_feedback.list_feedback(conn)


def _lines(*events) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def test_jsonl_import_writes_every_event_and_a_second_import_skips_them(ledger):
    d = _decisions(ledger.store)
    data = _lines(
        {"id": "01890000-0000-7000-8000-0000000000a1", "decision_id": d[0], "rating": -1,
         "intent": "incorrect", "surface": "production", "author_kind": "customer",
         "author": "u-17", "comment": "wrong plan", "correction": "The Pro plan costs $20.",
         "at": "2026-03-01T13:00:00Z"},
        {"id": "01890000-0000-7000-8000-0000000000a2", "decision_id": d[1], "intent": "style",
         "surface": "internal", "author_kind": "employee", "meta": {"ticket": "QA-9"},
         "at": "2026-03-01T13:05:00Z"},
    )
    res = import_feedback(ledger.store, data)
    assert (res.imported, res.duplicates) == (2, 0)
    first, second = _stored(ledger.store)
    assert first.to_dict() == {
        "id": "01890000-0000-7000-8000-0000000000a1", "decision_id": d[0],
        "at": "2026-03-01T13:00:00Z", "rating": -1.0, "intent": "incorrect",
        "surface": "production", "author_kind": "customer", "author": "u-17",
        "comment": "wrong plan", "correction": "The Pro plan costs $20.", "meta": {}}
    assert (second.intent, second.rating, second.correction, second.meta) == (
        "style", None, None, {"ticket": "QA-9"})
    again = import_feedback(ledger.store, data)
    assert (again.imported, again.duplicates) == (0, 2)
    assert len(_stored(ledger.store)) == 2


def test_csv_import_converts_cells_and_names_lines_across_quoted_newlines(ledger):
    d = _decisions(ledger.store)
    data = ("decision_id,rating,intent,surface,author_kind,comment,correction,at\n"
            f'{d[0]},1,incorrect,production,customer,"two\nlines",fixed,2026-03-01T14:00:00Z\n'
            f"{d[1]},,unknown,staging,system,,,\n").encode()
    assert import_feedback(ledger.store, data).imported == 2
    first, second = _stored(ledger.store)
    assert (first.rating, first.comment, first.correction) == (1.0, "two\nlines", "fixed")
    assert (second.rating, second.intent, second.comment) == (None, "unknown", None)
    bad = (f"decision_id,rating,surface,author_kind\n{d[0]},1,production,customer\n"
           f"{d[1]},lots,production,customer\n").encode()
    with pytest.raises(ValidationError) as exc:
        parse_feedback(bad)
    assert exc.value.message == ("line 3: rating: expected a number, got 'lots'; "
                                 "nothing was imported")


def test_an_unknown_decision_id_rejects_the_whole_file(ledger):
    d = _decisions(ledger.store)
    data = _lines(*[{"decision_id": x, "surface": "production", "author_kind": "customer"}
                    for x in (d[0], d[1], GHOST)])
    with pytest.raises(ValidationError) as exc:
        import_feedback(ledger.store, data)
    assert exc.value.message == (f"line 3: decision_id: no decision {GHOST} in the ledger; "
                                 "nothing was imported")
    assert (exc.value.field, exc.value.line) == ("decision_id", 3)
    assert _stored(ledger.store) == []


def test_every_bad_line_is_named_and_nothing_is_written(ledger):
    d = _decisions(ledger.store)
    fid = "01890000-0000-7000-8000-0000000000b1"
    data = _lines(
        {"decision_id": d[0], "surface": "production", "author_kind": "customer"},
        {"decision_id": d[1], "intent": "nitpick", "surface": "production",
         "author_kind": "customer"},
        {"decision_id": d[1], "surface": "web", "author_kind": "customer"},
        {"id": fid, "decision_id": d[2], "surface": "production", "author_kind": "customer"},
        {"id": fid, "decision_id": d[2], "surface": "production", "author_kind": "customer"},
    ) + b"{not json\n"
    with pytest.raises(ValidationError) as exc:
        import_feedback(ledger.store, data)
    assert exc.value.message == (f"line 2: intent: 'nitpick' is not one of {INTENTS} "
                                 "(and 3 more bad lines); nothing was imported")
    messages = [p.message for p in exc.value.problems[1:]]
    assert messages[:2] == [
        "line 3: surface: 'web' is not one of production, staging, internal",
        "line 5: id: repeats the id of line 4"]
    assert messages[2].startswith("line 6: not valid JSON (")  # orjson's wording varies
    assert _stored(ledger.store) == []


@pytest.mark.parametrize("data, message", [
    (b"", "FILE: feedback file holds no feedback events"),
    (b" \n\n", "FILE: feedback file holds no feedback events"),
    (b'[{"decision_id": "x"}]', "FILE: feedback file is a JSON array; write one JSON object "
                                "per line"),
    (b"id,rating\n", "line 1: decision_id: feedback file: expected JSON lines, or CSV with a "
                     "decision_id column"),
    (b"decision_id,score\n", "line 1: score: unknown column(s): score"),
])
def test_files_that_are_not_feedback_are_refused(data, message):
    with pytest.raises(ValidationError) as exc:
        parse_feedback(data)
    assert exc.value.message == message


def test_sdk_feedback_validates_and_writes_one_event(ledger):
    [did] = _decisions(ledger.store, 1)
    fid = ledger.feedback(did, intent="unsafe", surface="production", author_kind="customer",
                          rating=-1, correction="I can't help with that.", at=T0 + 5)
    [fb] = _stored(ledger.store)
    assert (fb.id, fb.decision_id, fb.intent, fb.at, fb.correction) == (
        fid, did, "unsafe", T0 + 5, "I can't help with that.")
    assert ledger.feedback(did, surface="production", author_kind="customer", id=fid) == fid
    assert len(_stored(ledger.store)) == 1  # the same id again records nothing
    with pytest.raises(ValidationError, match="^intent: 'meh' is not one of"):
        ledger.feedback(did, intent="meh", surface="production", author_kind="customer")
    with pytest.raises(ValidationError, match=f"^decision_id: no decision {GHOST} in the"):
        ledger.feedback(GHOST, surface="production", author_kind="customer")
    with pytest.raises(ValidationError, match="^author_kind: None is not one of"):
        ledger.feedback(did, surface="production", author_kind=None)
    assert len(_stored(ledger.store)) == 1


def test_sdk_feedback_on_a_decision_still_queued_in_the_recorder(ledger):
    did = ledger.record(input_text="q", output_text="a")  # batched: not committed yet
    fid = ledger.feedback(did, intent="incorrect", surface="production", author_kind="customer")
    assert [f.id for f in _stored(ledger.store)] == [fid]


# --- the command ---------------------------------------------------------------------------

@pytest.fixture
def db(cli_ledger):
    return cli_ledger


def _main(db, *args):
    return subprocess.run([sys.executable, "-c", "from modelward.cli.app import main; main()",
                           *db.args, *args], cwd=db.tmp, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_feedback_import_command_text_and_json(db):
    d = _decisions(db.store)
    f = db.tmp / "fb.jsonl"
    f.write_bytes(_lines(*[{"decision_id": x, "surface": "production", "author_kind": "customer",
                            "id": f"01890000-0000-7000-8000-00000000000{i}"}
                           for i, x in enumerate(d)]))
    run = CliRunner().invoke(app, [*db.args, "feedback", "import", str(f)])
    assert (run.exit_code, run.stdout) == (0, "imported 3 feedback events\n")
    run = CliRunner().invoke(app, [*db.args, "feedback", "import", str(f), "--json"])
    assert run.exit_code == 0
    assert orjson.loads(run.stdout) == {"ok": True, "imported": 0, "duplicates": 3}


def test_feedback_import_command_refuses_a_bad_file_with_exit_2(db):
    d = _decisions(db.store)
    f = db.tmp / "fb.csv"
    f.write_text(f"decision_id,intent,surface,author_kind\n{d[0]},style,production,customer\n"
                 f"{GHOST},incorrect,production,customer\n")
    proc = _main(db, "feedback", "import", str(f))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"error: line 3: decision_id: no decision {GHOST} in the ledger; "
                           "nothing was imported\n"
                           "hint: record the decision first, or fix the id\n")
    proc = _main(db, "feedback", "import", str(f), "--json")
    assert proc.returncode == 2
    assert orjson.loads(proc.stdout)["error"] == {
        "code": "validation_error", "field": "decision_id", "line": 3,
        "message": f"line 3: decision_id: no decision {GHOST} in the ledger; nothing was "
                   "imported", "hint": "record the decision first, or fix the id"}
    with db.store.read() as conn:
        assert ledger_feedback.list_feedback(conn) == []
    f.write_text(f"decision_id,intent,surface,author_kind\n{d[0]},nitpick,production,customer\n"
                 f"{d[1]},style,prod,customer\n")
    proc = _main(db, "feedback", "import", str(f))
    assert proc.returncode == 2
    assert proc.stderr == (  # the other bad lines first, as `decisions import` prints them
        "  line 3: surface: 'prod' is not one of production, staging, internal\n"
        f"error: line 2: intent: 'nitpick' is not one of {INTENTS} (and 1 more bad lines); "
        "nothing was imported\n"
        "hint: fix the lines named and import the file again\n")
