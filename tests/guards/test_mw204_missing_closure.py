"""MW204 missing-closure, with closures captured for real (git repository, subprocess)."""

from __future__ import annotations

import sys
from pathlib import Path

from modelward.ledger import artifacts
from modelward.registry.closure.capture import capture
from modelward.timefmt import now_us
from tests.registry.closure.closure_fixtures import DATA, train_spec, trained

from .builders import DAY, HOUR, NOW, T0, move, put, put_hosted


def short(digest: str) -> str:
    return digest[:19] + "…"


def test_MW204_fires_for_live_trained_artifacts_without_a_closure(ledger, fleet, findings):
    store = ledger.store
    adapter = put(store, "adapter", b"lora-3", "support-lora", "3")
    tuned = put(store, "model", b"chat-ft", "chat-ft", parents=[(fleet["v3"], "base")])
    marked = put(store, "model", b"chat-rl", "chat-rl", meta={"trained": True})
    idle = put(store, "adapter", b"lora-idle", "idle-lora")  # trained, but nothing serves it
    move(store, "support/adapter", adapter, T0 + HOUR)
    move(store, "chat/ft", tuned, T0 + HOUR)
    move(store, "chat/rl", marked, T0 + HOUR)
    move(store, "chat/rl-canary", marked, T0 + HOUR)
    move(store, "later", idle, NOW + DAY)  # not yet live at NOW
    found = {f.subject: f for f in findings("MW204")}
    assert set(found) == {adapter, tuned, marked}
    f = found[adapter]
    assert f.severity == "warning" and f.evidence["problem"] == "no-closure"
    assert f.message == (f"adapter support-lora@3 ({short(adapter)}) serves support/adapter "
                         "but has no training closure")
    assert found[tuned].evidence["trained"] == f"fine-tune of {fleet['v3']}"
    assert found[marked].evidence["trained"] == "meta trained"
    assert found[marked].evidence["aliases"] == ["chat/rl", "chat/rl-canary"]
    assert found[marked].message.startswith("model chat-rl (") and (
        "serves chat/rl, chat/rl-canary but has no training closure" in found[marked].message)
    # once the alias moves away the artifact is no longer live
    move(store, "support/adapter", fleet["v4"], T0 + 2 * HOUR)
    assert adapter not in {f.subject for f in findings("MW204")}


def test_MW204_fires_for_an_incomplete_closure(ledger, fleet, findings, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "w.py").write_text("open('w.bin', 'wb').write(b'weights')\n")
    result = capture(ledger.store, train_spec(loose, command=[sys.executable, "w.py"],
                                              output=Path("w.bin"), inputs=(), params=None))
    move(ledger.store, "chat/scratch", result.artifact.digest, T0 + HOUR)
    [f] = findings("MW204")
    assert f.evidence["problem"] == "incomplete" and f.evidence["closure"] == result.closure.digest
    assert f.evidence["gaps"] == [f"code: {loose} is not inside a git repository"]
    assert f.message == (f"model toy ({short(result.artifact.digest)}) serves chat/scratch but "
                         f"its closure {short(result.closure.digest)} is incomplete: code: "
                         f"{loose} is not inside a git repository")


def test_MW204_fires_when_an_input_or_a_closure_blob_is_no_longer_retained(
        ledger, fleet, findings, tmp_path):
    store = ledger.store
    result = trained(store, tmp_path)
    model, row = result.artifact.digest, result.closure
    move(store, "chat/ft", model, T0 + HOUR)
    assert findings("MW204") == []
    data = result.record["inputs"][0]["digest"]
    assert store.blobs.get(data) == DATA.encode()
    store.blobs.delete(data)  # gc with the wrong roots, or a hand-cleaned bucket
    [f] = findings("MW204")
    assert f.evidence["problem"] == "unretained" and f.evidence["closure"] == row.digest
    assert f.message == (f"model toy ({short(model)}) serves chat/ft but its closure "
                         f"{short(row.digest)} can no longer rebuild it: input dataset "
                         f"train.csv ({short(data)}) is missing")
    artifacts.register_bytes(store, "dataset", DATA.encode(), name="train.csv")  # stored again
    assert findings("MW204") == []
    # the record itself, same size, other bytes: only re-hashing notices
    record = store.blobs.path_of(row.digest)
    raw = bytearray(record.read_bytes())
    raw[10] ^= 1
    record.write_bytes(bytes(raw))
    [f] = findings("MW204")
    assert f.evidence["unretained"] == [{
        "digest": row.digest, "what": "record", "status": "corrupt",
        "label": f"the closure's record blob {short(row.digest)} is corrupt"}]
    assert findings("MW204", verify=False) == []
    store.blobs.delete(result.record["code"]["diff"])
    assert [u["what"] for u in findings("MW204", verify=False)[0].evidence["unretained"]] == [
        "part"]


def test_MW204_fires_for_a_hosted_base_past_its_retirement(ledger, fleet, findings, tmp_path):
    store = ledger.store
    later = now_us() + 10 * DAY
    base = put_hosted(store, "openai:gpt-4o-mini-2024-07-18", "gpt-4o-mini",
                      retires_at=later - DAY)
    result = trained(store, tmp_path, base=base)  # the vendor still served it then
    assert result.closure.status == "complete"
    move(store, "chat/ft", result.artifact.digest, T0 + HOUR)
    assert findings("MW204", now=later - 2 * DAY) == []
    [f] = findings("MW204", now=later)
    assert [(u["what"], u["status"]) for u in f.evidence["unretained"]] == [("base", "retired")]


def test_MW204_clean_on_a_realistic_ledger_with_a_complete_closure(ledger, fleet, findings,
                                                                    tmp_path):
    store = ledger.store
    result = trained(store, tmp_path, base=fleet["v3"])
    move(store, "chat/ft", result.artifact.digest, T0 + HOUR)
    # an earlier incomplete closure of the same bytes does not matter once a complete exists
    put(store, "adapter", b"lora-draft", "draft")  # trained but never served
    assert findings("MW204") == []
