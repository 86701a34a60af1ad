"""What a contamination scan reads: files, directories, artifacts and prompts."""

from __future__ import annotations

import gzip

import orjson
import pytest

from modelward.errors import BlobCorruptError, UnknownAliasError, ValidationError
from modelward.evals.contamination.corpus import load_items, open_source
from modelward.evals.contamination.scan import scan
from modelward.evals.harness.evalsets import EvalItem
from modelward.ledger import aliases, artifacts

Q1 = "What is the boiling point of water at sea level in degrees Celsius?"
Q2 = "Who wrote the play Hamlet and in which year was it first performed on stage?"
ITEMS = [EvalItem("q1", Q1), EvalItem("q2", {"question": Q2})]
PROD_ALIAS = "prompt/support@production"


def _where(report) -> list[tuple[str, str, str, str | None]]:
    return [(h.item_id, m.source, m.locator, m.doc_id) for h in report.contaminated
            for m in h.matches]


def _jsonl(path, rows) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def test_jsonl_records_text_field_or_every_string(tmp_path):
    _jsonl(tmp_path / "pool.jsonl", [
        {"id": "d1", "text": "nothing to see"},
        {"id": 7, "messages": [{"role": "user", "content": f"Quiz: {Q2}"},
                               {"role": "assistant", "content": "Shakespeare"}]},
        "a bare string record",
        {"text": Q1, "meta": {"note": "x"}}])
    (tmp_path / "pool.jsonl").write_bytes((tmp_path / "pool.jsonl").read_bytes() + b"\n\n")
    report = scan(ITEMS, [open_source("pool.jsonl", base=tmp_path)])
    assert _where(report) == [("q1", "pool.jsonl", "pool.jsonl:4", None),
                              ("q2", "pool.jsonl", "pool.jsonl:2", "7")]
    assert report.documents == 4
    assert report.sources == [{"name": "pool.jsonl", "kind": "file", "digest": None,
                               "documents": 4, "skipped": []}]


def test_a_bad_jsonl_line_is_named(tmp_path):
    (tmp_path / "pool.jsonl").write_text('{"text": "fine"}\n{"text": oops}\n')
    with pytest.raises(ValidationError) as exc:
        scan(ITEMS, [open_source("pool.jsonl", base=tmp_path)])
    assert exc.value.message == ("against: pool.jsonl:2 is not valid JSON (unexpected "
                                 "character, expected a JSON value, column 10)")


def test_csv_text_column_or_every_cell_and_text_paragraphs(tmp_path):
    (tmp_path / "a.csv").write_text(f'id,question,answer\nr1,"{Q1}",100\nr2,other,x\n')
    (tmp_path / "b.txt").write_text(f"Title\n\nSome intro.\n{Q2}\nMore.\n\n\nLast one.\n")
    report = scan(ITEMS, [open_source(str(tmp_path / "a.csv")),
                          open_source(str(tmp_path / "b.txt"))])
    a, b = str(tmp_path / "a.csv"), str(tmp_path / "b.txt")
    assert _where(report) == [("q1", a, f"{a}:2", "r1"), ("q2", b, f"{b}:3", None)]
    assert [s["documents"] for s in report.sources] == [2, 3]


def test_a_directory_reads_every_text_file_and_skips_binaries(tmp_path):
    docs = tmp_path / "docs"
    (docs / "faq").mkdir(parents=True)
    (docs / ".git").mkdir()
    (docs / ".git" / "x.txt").write_text(Q1)  # hidden: not read
    (docs / "faq" / "hamlet.md").write_text(f"# Hamlet\n\n{Q2}\n")
    (docs / "logo.png").write_bytes(b"\x89PNG\x00\x00binary")
    with gzip.open(docs / "pool.jsonl.gz", "wb") as fh:
        fh.write(orjson.dumps({"id": "z", "text": Q1}) + b"\n")
    report = scan(ITEMS, [open_source("docs", base=tmp_path)])
    assert _where(report) == [("q1", "docs", "docs/pool.jsonl.gz:1", "z"),
                              ("q2", "docs", "docs/faq/hamlet.md:3", None)]
    assert report.sources[0]["skipped"] == ["docs/logo.png: not UTF-8 text"]


def test_an_explicit_file_that_is_not_text_is_an_error(tmp_path):
    (tmp_path / "blob.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValidationError, match="blob.txt is not UTF-8 text"):
        scan(ITEMS, [open_source(str(tmp_path / "blob.txt"))])


def test_a_name_that_is_no_path_needs_a_ledger(tmp_path):
    with pytest.raises(ValidationError, match=r"against: 'missing.jsonl' is not a file"):
        open_source("missing.jsonl", base=tmp_path)


def test_dataset_artifacts_file_and_directory_stream_from_the_blob_store(ledger, tmp_path):
    store = ledger.store
    data = tmp_path / "train"
    data.mkdir()
    _jsonl(data / "part-0.jsonl", [{"text": "nothing"}, {"text": f"Q: {Q2} A: 1600"}])
    (data / "notes.txt").write_text(Q1 + "\n")
    folder = artifacts.register_path(store, "dataset", data, name="sft-data").artifact
    single = artifacts.register_path(store, "dataset", data / "part-0.jsonl",
                                     name="part").artifact
    with store.read() as conn:
        report = scan(ITEMS, [open_source(folder.digest, store=store, conn=conn),
                              open_source(single.digest, store=store, conn=conn)])
    assert _where(report) == [("q1", folder.digest, "notes.txt:1", None),
                              ("q2", folder.digest, "part-0.jsonl:2", None),
                              ("q2", single.digest, "part-0.jsonl:2", None)]
    assert [s["kind"] for s in report.sources] == ["artifact", "artifact"]
    assert report.sources[0]["digest"] == folder.digest


def test_a_corrupt_blob_fails_the_scan(ledger, tmp_path):
    store = ledger.store
    (tmp_path / "pool.jsonl").write_text(orjson.dumps({"text": Q1}).decode() + "\n")
    art = artifacts.register_path(store, "dataset", tmp_path / "pool.jsonl", name="p").artifact
    path = store.blobs.path_of(art.digest)
    path.write_bytes(path.read_bytes().replace(b"boiling", b"melting"))
    with store.read() as conn:
        src = open_source(art.digest, store=store, conn=conn)
    with pytest.raises(BlobCorruptError, match="corrupt"):
        scan(ITEMS, [src])


def test_a_prompt_alias_is_its_template_system_text_and_few_shot_examples(ledger):
    store = ledger.store
    prompt = {"template": "Answer: {{ question }}", "system": "You are helpful.",
              "few_shot": [{"question": "What is 2 + 2?", "answer": "4"},
                           {"question": Q1, "answer": "100 degrees"}]}
    digest = artifacts.register_bytes(store, "prompt", orjson.dumps(prompt),
                                      name="support").artifact.digest
    with store.write() as conn:
        aliases.set_alias(conn, PROD_ALIAS, digest)
    with store.read() as conn:
        src = open_source(PROD_ALIAS, store=store, conn=conn)
        report = scan(ITEMS, [src])
        assert _where(report) == [("q1", "prompt/support@production", "few_shot[1]", None)]
        assert src.digest == digest and src.kind == "prompt"
        assert report.contaminated[0].best.span == Q1.rstrip("?")
        with pytest.raises(ValidationError, match="'prompt/nope' is not a file, a directory"):
            open_source("prompt/nope", store=store, conn=conn)
        with pytest.raises(UnknownAliasError, match="did not exist at"):
            open_source(PROD_ALIAS, store=store, conn=conn, at=1)


def test_eval_sets_load_from_a_file_or_a_digest(ledger, tmp_path):
    path = tmp_path / "ev.jsonl"
    _jsonl(path, [{"id": "a", "input": Q1}])
    digest = artifacts.register_path(ledger.store, "evalset", path, name="ev").artifact.digest
    assert [it.id for it in load_items(str(path))[0]] == ["a"]
    items, got = load_items(digest, store=ledger.store)
    assert [it.input for it in items] == [Q1] and got == digest
    with pytest.raises(ValidationError, match="neither a file nor a sha256: digest"):
        load_items(str(tmp_path / "nope.jsonl"))
