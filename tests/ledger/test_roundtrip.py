"""End-to-end over each backend: register, alias, record, verify."""

from pathlib import Path

from modelward.ledger import aliases, artifacts, chain, decisions


def test_record_and_verify(ledger, tmp_path):
    (tmp_path / "m.bin").write_bytes(b"weights-1")
    art = artifacts.register_path(ledger.store, "model", Path(tmp_path / "m.bin"), name="chat").artifact
    with ledger.store.write() as conn:
        aliases.set_alias(conn, "chat/v1", art.digest)
    res = ledger.resolve("chat/v1")
    assert res.digest == art.digest and res.artifact_kind == "model"
    ids = [ledger.record(uses=[res], subject=f"u{i}", input_text="q", output_text="a",
                         gate={"threshold": 1, "candidates": 5, "passed": 2})
           for i in range(25)]
    ledger.flush()
    with ledger.store.read() as conn:
        report = chain.verify(conn)
        assert report.ok, report.problems
        assert report.decisions == 25
        d = decisions.get(conn, ids[0])
    assert d.model_digest == art.digest and d.alias == "chat/v1" and d.gate_threshold == 1.0
