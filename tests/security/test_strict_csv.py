"""Broken CSV never loses rows quietly: every CSV import reads through one strict reader,
and a stray quote, a wrong cell count, an unterminated quote or a NUL byte is refused with the
file and line named, exit 2, and nothing written (SQLite file and PostgreSQL)."""

from __future__ import annotations

import pytest

from modelward.csvfile import read_csv
from modelward.errors import ValidationError
from modelward.evals.curation.feedback import parse_feedback
from modelward.evals.harness.evalsets import parse_evalset
from modelward.evals.safety.suites import parse_suite
from modelward.ledger import feedback as ledger_feedback
from modelward.ledger import people
from modelward.retrieval.thresholds import parse_scores
from modelward.rollout.population import parse_table

HEADER = "email,name,status,team\n"

BROKEN = [
    # (what, file text, line named, message)
    ("text after a closing quote", HEADER + 'ann@x.io,"Ann" Smith,active,ml\n',
     2, 'text after a closing quote (a quote inside a cell must be doubled: "")'),
    ("unterminated quote", HEADER + 'ann@x.io,"Ann,active,ml\nbob@x.io,Bob,left,ml\n',
     2, "a quoted cell opened here is never closed (the file ends at line 3): a stray quote?"),
    ("too many cells", HEADER + "ann@x.io,Ann,active,ml,extra\n",
     2, "5 cells where the header has 4"),
    ("too few cells", HEADER + "ann@x.io,Ann,active\n", 2, "3 cells where the header has 4"),
    ("a NUL byte", HEADER + "ann@x.io,Ann,active,ml\nbob@x.io,B\0b,left,ml\n",
     3, "holds a NUL byte: not a text file"),
    ("a quoted cell swallowing a line",
     HEADER + 'ann@x.io,"Ann,active,ml\nbob@x.io,Bob",left,ml\n',
     2, "the quoted name cell runs on to line 3: a stray quote?"),
]


@pytest.mark.parametrize("what, text, line, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_the_strict_reader_names_file_and_line(what, text, line, message):
    with pytest.raises(ValidationError) as exc:
        read_csv(text.encode(), name="team.csv")
    assert exc.value.line == line
    assert exc.value.message.startswith(f"team.csv, line {line}: {message}")


def test_multiline_cells_only_where_declared_and_blank_lines_skipped():
    text = 'a,b\n"x\ny",1\n\n"z",2\n'
    table = read_csv(text, name="f.csv", multiline=("a",))
    assert table.rows == [(2, {"a": "x\ny", "b": "1"}), (5, {"a": "z", "b": "2"})]
    assert read_csv('a,b\nO"Brien,1\n', name="f.csv").rows == [(2, {"a": 'O"Brien', "b": "1"})]
    with pytest.raises(ValidationError, match="f.csv, line 2: the quoted a cell runs on"):
        read_csv(text, name="f.csv")
    with pytest.raises(ValidationError, match="f.csv, line 1: header repeats a"):
        read_csv("a,a\n1,2\n", name="f.csv")


STRAY = 'ann@x.io,"Ann,active,ml\n'  # the quote opens a cell nothing closes


@pytest.mark.parametrize("parse, data", [
    (lambda d: people.parse_csv(d, name="in.csv"), HEADER + STRAY + "bob@x.io,Bob,left,ml\n"),
    (lambda d: parse_feedback(d, name="in.csv"),
     "decision_id,rating,comment\nd1,\"1,ok\nd2,0,bad\n"),
    (lambda d: parse_table(d, "in.csv"), "subject,x\nu1,\"1\nu2,2\n"),
    (lambda d: parse_scores(d.decode(), suffix=".csv", name="in.csv"), "score,query\n0.5,\"q\n0.7,r\n"),
    (lambda d: parse_evalset(d, name="in.csv"), "id,input\ni1,\"hello\ni2,bye\n"),
    (lambda d: parse_suite(d, "in.csv"), "prompt,label\n\"how,safe\nx,unsafe\n"),
], ids=["people", "feedback", "population", "scores", "evalset", "safety-suite"])
def test_every_csv_import_refuses_a_stray_quote(parse, data):
    with pytest.raises(ValidationError, match=r"in.csv, line 2: a quoted cell opened here is "
                                              r"never closed"):
        parse(data.encode())


def test_an_offboarding_row_after_a_stray_quote_is_not_lost(cli, tmp_path):
    led, run = cli
    (tmp_path / "team.csv").write_text(HEADER + "ann@x.io,Ann,active,ml\nbob@x.io,Bob,active,ml\n"
                                       "cy@x.io,Cy,active,ml\n")
    assert run("people", "sync", "team.csv").returncode == 0
    # Ann's name opens a quote; a lenient reader swallowed Bob's `left` row into it and
    # synced with exit 0, so Bob stayed active. The strict reader refuses the file.
    (tmp_path / "next.csv").write_text(HEADER + 'ann@x.io,"Ann,active,ml\n'
                                       "bob@x.io,Bob,left,ml\n"
                                       'cy@x.io,Cy",active,ml\n')
    bad = run("people", "sync", "next.csv")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.startswith("error: next.csv, line 2: the quoted name cell runs on to "
                                 "line 4: a stray quote?")
    with led.store.read() as conn:
        assert {p.email: p.status for p in people.list_people(conn)} == {
            "ann@x.io": "active", "bob@x.io": "active", "cy@x.io": "active"}  # nothing written
    (tmp_path / "next.csv").write_text(HEADER + "ann@x.io,Ann,active,ml\nbob@x.io,Bob,left,ml\n"
                                       "cy@x.io,Cy,active,ml\n")
    assert run("people", "sync", "next.csv").returncode == 0
    with led.store.read() as conn:
        assert people.get(conn, "bob@x.io").status == "left"


def test_feedback_import_of_broken_csv_exits_2_and_writes_nothing(cli, tmp_path):
    led, run = cli
    ids = [led.record(subject=f"s{i}") for i in range(3)]
    led.flush()
    head = "decision_id,surface,author_kind,rating,comment\n"
    cases = {
        "stray.csv": (f'{ids[0]},production,customer,1,"fine\n{ids[1]},production,customer,0,'
                      f'bad\n{ids[2]},production,customer,1,ok\n',
                      "stray.csv, line 2: a quoted cell opened here is never closed"),
        "count.csv": (f"{ids[0]},production,customer,1,ok\n{ids[1]},production,customer,0\n",
                      "count.csv, line 3: 4 cells where the header has 5"),
        "nul.csv": (f"{ids[0]},production,customer,1,o\0k\n", "nul.csv, line 2: holds a NUL"),
    }
    for name, (body, message) in cases.items():
        (tmp_path / name).write_text(head + body)
        proc = run("feedback", "import", name)
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
        assert proc.stderr.startswith(f"error: {message}"), proc.stderr
    with led.store.read() as conn:
        assert ledger_feedback.list_feedback(conn) == []


def test_unreadable_input_files_are_one_clear_error(cli, tmp_path):
    _led, run = cli
    (tmp_path / "adir").mkdir()
    for command in (("people", "sync"), ("feedback", "import"), ("decisions", "import")):
        for path, message in (("adir", "adir is a directory, not a file"),
                              ("missing.csv", "missing.csv does not exist"),
                              # a regular file whose read fails with EIO
                              ("/proc/self/mem", "cannot read /proc/self/mem: Input/output "
                                                 "error")):
            proc = run(*command, path)
            assert (proc.returncode, proc.stdout) == (2, ""), (command, proc.stderr)
            assert proc.stderr == f"error: FILE: {message}\n", (command, proc.stderr)
