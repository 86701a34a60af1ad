"""Replay over every backend: identical, different, and exactly what is not retained."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelward.digest import of_text
from modelward.errors import UnknownDecisionError, ValidationError
from modelward.ledger import artifacts, decisions, subject_keys
from modelward.registry.replay import replay
from modelward.timefmt import iso, now_us

from .conftest import DAY, T0, record

RUNNER = "tests.registry.test_replay:echo_model"
SEEN: list[dict] = []
PROMPT = b'{"template": "Customer asks: {{ input }}", "system": "Be brief."}'


def echo_model(prompt, *, model, item, system=None):
    """A deterministic model: answers with what it loaded from ``model`` (a retained file's
    text, a directory's files, or a hosted id), the system text and the prompt."""
    path = Path(model)
    if path.is_file():
        loaded = path.read_text()
    elif path.is_dir():
        loaded = ",".join(f"{f.relative_to(path)}={f.read_text()}"
                          for f in sorted(path.rglob("*")) if f.is_file())
    else:
        loaded = model
    SEEN.append({"model": model, "item": item, "system": system, "prompt": prompt,
                 "exists": path.exists()})
    return f"[{loaded}] {system} :: {prompt}"


def broken(prompt, *, model, item):
    raise RuntimeError("GPU fell off the bus")


@pytest.fixture
def setup(store, tmp_path):
    SEEN.clear()
    weights = tmp_path / "w.bin"
    weights.write_text("weights-v3")
    model = artifacts.register_path(store, "model", weights, name="chat", version="v3",
                                    at=T0).artifact.digest
    prompt = artifacts.register_bytes(store, "prompt", PROMPT, name="support", version="38",
                                      at=T0).artifact.digest
    return {"model": model, "prompt": prompt}


def decide(store, **fields) -> str:
    fields.setdefault("at", T0 + DAY)
    [decision_id] = record(store, fields)
    return decision_id


EXPECTED = "[weights-v3] Be brief. :: Customer asks: where is my order?"


def test_identical_with_the_retained_model_prompt_and_input(store, setup):
    d = decide(store, model_digest=setup["model"], prompt_digest=setup["prompt"],
               input_text="where is my order?", output_text=EXPECTED, subject="u1")
    rep = replay(store, d, RUNNER)
    assert rep.verdict == "identical" and rep.exit_code == 0 and rep.missing == []
    assert (rep.compared_by, rep.diff, rep.error) == ("text", None, None)
    assert rep.rendered == "Customer asks: where is my order?" and rep.system == "Be brief."
    blob = store.blobs.path_of(setup["model"]).resolve()
    [seen] = SEEN
    assert seen["model"] == str(blob) == rep.model["passed_as"]
    assert seen["item"] == {"id": d, "decision_id": d, "input": "where is my order?",
                            "at": iso(T0 + DAY), "alias": None}
    assert rep.model["status"] == rep.prompt["status"] == "present"
    assert rep.prompt["uses_input"] is True
    with store.read() as conn:  # a decision with a subject chains its digests keyed
        want = subject_keys.chained_digest(conn, "u1", of_text(EXPECTED))
    assert rep.output_digest == rep.recorded_digest == want != of_text(EXPECTED)


def test_different_with_a_unified_diff(store, setup):
    d = decide(store, model_digest=setup["model"], prompt_digest=setup["prompt"],
               input_text="where is my order?",
               output_text="[weights-v2] Be brief. :: Customer asks: where is my order?\n"
                           "It shipped.")
    rep = replay(store, d, RUNNER)
    assert rep.verdict == "different" and rep.exit_code == 1 and rep.compared_by == "text"
    assert rep.diff == ("--- recorded\n+++ replay\n@@ -1,2 +1 @@\n"
                        "-[weights-v2] Be brief. :: Customer asks: where is my order?\n"
                        "-It shipped.\n\\ No newline at end of file\n"
                        f"+{EXPECTED}\n\\ No newline at end of file\n")


def test_compared_by_digest_when_only_the_output_digest_was_kept(store, setup):
    same = decide(store, model_digest=setup["model"], prompt_digest=setup["prompt"],
                  input_text="where is my order?", output_digest=of_text(EXPECTED))
    other = decide(store, model_digest=setup["model"], prompt_digest=setup["prompt"],
                   input_text="where is my order?", output_digest=of_text("something else"))
    nothing = decide(store, model_digest=setup["model"], prompt_digest=setup["prompt"],
                     input_text="where is my order?")
    rep = replay(store, same, RUNNER)
    assert (rep.verdict, rep.compared_by, rep.text_note) == (
        "identical", "digest", "the output text was never kept")
    rep = replay(store, other, RUNNER)
    assert (rep.verdict, rep.compared_by, rep.diff) == ("different", "digest", None)
    assert rep.output_digest == of_text(EXPECTED)
    rep = replay(store, nothing, RUNNER)
    assert rep.verdict == "not-comparable" and rep.exit_code == 1


def test_not_retained_names_each_missing_thing_and_since_when(store, setup, tmp_path):
    gone_at = T0 + 30 * DAY
    d = decide(store, model_digest=setup["model"], prompt_digest=setup["prompt"],
               input_text="where is my order?", output_text=EXPECTED, subject="u7")
    store.blobs.delete(setup["model"])  # retention's gc collected the checkpoint
    with store.write() as conn:
        artifacts.mark_payload_deleted(conn, setup["model"], gone_at)
    erased = decisions.erase_subject(store, "u7")
    assert erased == 1
    rep = replay(store, d, RUNNER)
    assert rep.verdict == "not-retained" and rep.exit_code == 1 and SEEN == []
    model, text = rep.missing
    assert (model.what, model.status, model.since, model.digest) == (
        "model", "missing", gone_at, setup["model"])
    assert model.message == (f"model chat@v3 ({setup['model']}) is not retained: its payload "
                             f"was deleted by gc at {iso(gone_at)}")
    assert (text.what, text.status) == ("input text", "erased")
    assert text.message.startswith("the input text was erased at ")
    assert text.message.endswith(" (subject u7)") and text.since is not None


def test_never_stored_unregistered_retired_and_corrupt(store, setup, tmp_path):
    ckpt = tmp_path / "big.safetensors"
    ckpt.write_bytes(b"\x00big")
    unstored = artifacts.register_path(store, "model", ckpt, name="big", at=T0,
                                       store_payload=False).artifact.digest
    retired = artifacts.register_hosted(store, "openai:gpt-4-0314", name="gpt-4",
                                        retires_at=T0 + 2 * DAY, at=T0).artifact.digest
    ghost = of_text("never registered")
    cases = {unstored: ("not-stored", None, f"model big ({unstored}) was never stored: "
                        f"registered at {iso(T0)} without a payload (--no-store)"),
             retired: ("retired", T0 + 2 * DAY, f"model gpt-4 ({retired}) is held by the "
                       f"vendor as openai:gpt-4-0314, retired at {iso(T0 + 2 * DAY)}"),
             ghost: ("unregistered", None, f"model {ghost} was never registered: there is "
                     "no payload to replay with")}
    for digest, (status, since, message) in cases.items():
        d = decide(store, model_digest=digest, input_text="hi", output_text="hello")
        [m] = replay(store, d, RUNNER).missing
        assert (m.what, m.status, m.since, m.message) == ("model", status, since, message)
    # a corrupt blob: same size, other bytes; a deleted prompt blob with no gc record
    d = decide(store, model_digest=setup["model"], prompt_digest=setup["prompt"],
               input_text="hi")
    store.blobs.path_of(setup["model"]).write_text("weights-XX")
    store.blobs.delete(setup["prompt"])
    model, prompt = replay(store, d, RUNNER, use_cache=False).missing
    assert (model.status, prompt.status) == ("corrupt", "missing")
    assert model.message == (f"model chat@v3 ({setup['model']}) is not retained: its payload "
                             "is corrupt (the blob's bytes no longer match its digest)")
    assert prompt.message == (f"prompt support@38 ({setup['prompt']}) is not retained: the "
                              "blob is not in the store (no deletion by gc was recorded)")


def test_input_never_kept(store, setup):
    d = decide(store, model_digest=setup["model"], input_digest=of_text("q"),
               output_text="answer")
    [m] = replay(store, d, RUNNER).missing
    assert (m.what, m.status) == ("input text", "not-kept")
    assert m.message == "the input text was never kept (only the output was)"
    d = decide(store, model_digest=setup["model"], input_digest=of_text("q"))
    [m] = replay(store, d, RUNNER).missing
    assert m.message == ("the input text was never kept: the decision was recorded with "
                         "digests only")


def test_a_hosted_model_is_passed_by_its_vendor_id(store, setup):
    hosted = artifacts.register_hosted(store, "openai:gpt-4o-2024-08-06",
                                       name="gpt-4o").artifact.digest
    out = "[openai:gpt-4o-2024-08-06] None :: hello"
    d = decide(store, model_digest=hosted, alias="chat/hosted", input_text="hello",
               output_text=out)
    rep = replay(store, d, RUNNER)
    assert rep.verdict == "identical" and SEEN[0]["model"] == "openai:gpt-4o-2024-08-06"
    assert rep.model["status"] == "vendor" and SEEN[0]["item"]["alias"] == "chat/hosted"


def test_a_directory_checkpoint_is_passed_as_a_tree_of_its_verified_files(store, tmp_path):
    SEEN.clear()
    ckpt = tmp_path / "chat-v4"
    (ckpt / "shards").mkdir(parents=True)
    (ckpt / "config.json").write_text('{"layers": 4}')
    (ckpt / "shards" / "00.bin").write_text("w0")
    digest = artifacts.register_path(store, "model", ckpt, name="chat",
                                     version="v4").artifact.digest
    out = '[config.json={"layers": 4},shards/00.bin=w0] None :: hi'
    d = decide(store, model_digest=digest, input_text="hi", output_text=out)
    rep = replay(store, d, RUNNER)
    assert rep.verdict == "identical", rep.diff
    path = Path(SEEN[0]["model"])
    # the verified tree, kept by digest for the next load (registry/loading.py)
    assert SEEN[0]["exists"] and path.name == digest[7:] and path.is_dir()
    assert (path / "shards" / "00.bin").read_text() == "w0"


def test_prompt_rendering_rules(store, setup):
    plain = artifacts.register_bytes(store, "prompt", b"You are a support agent.",
                                     name="plain").artifact.digest
    fields = artifacts.register_bytes(store, "prompt", b"[{{ lang }}] {{ input }}",
                                      name="fields").artifact.digest
    broken_tpl = artifacts.register_bytes(store, "prompt", b"{{ input }} {{ nowhere }}",
                                          name="broken").artifact.digest
    # a template that does not use `input` is the system text; the input goes as is
    d = decide(store, model_digest=setup["model"], prompt_digest=plain, input_text="hi")
    rep = replay(store, d, RUNNER)
    assert (rep.rendered, rep.system, rep.prompt["uses_input"]) == (
        "hi", "You are a support agent.", False)
    # a JSON object input lends its fields to the template
    d = decide(store, model_digest=setup["model"], prompt_digest=fields,
               input_text='{"lang": "fr"}')
    assert replay(store, d, RUNNER).rendered == '[fr] {"lang": "fr"}'
    d = decide(store, model_digest=setup["model"], prompt_digest=broken_tpl, input_text="hi")
    rep = replay(store, d, RUNNER)
    assert rep.verdict == "error" and "failed to render" in rep.error and rep.exit_code == 1


def test_a_runner_failure_is_reported(store, setup):
    d = decide(store, model_digest=setup["model"], input_text="hi", output_text="x")
    rep = replay(store, d, "tests.registry.test_replay:broken")
    assert rep.verdict == "error" and rep.error == (
        "tests.registry.test_replay:broken raised RuntimeError: GPU fell off the bus")


def test_bad_requests_are_refused(store, setup):
    with pytest.raises(ValidationError, match="not a decision id") as info:
        replay(store, "v1", RUNNER)
    assert info.value.field == "DECISION_ID"
    with pytest.raises(UnknownDecisionError) as info:
        replay(store, "0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70", RUNNER)
    assert info.value.hint == "find decisions with `modelward decisions search`"
    d = decide(store, input_text="hi", output_text="x")
    with pytest.raises(ValidationError, match="records no model digest"):
        replay(store, d, RUNNER)
    with pytest.raises(ValidationError, match="not a runner") as info:
        replay(store, d, "no-runner")
    assert info.value.field == "--runner"


def test_replay_writes_nothing(store, setup):
    d = decide(store, model_digest=setup["model"], prompt_digest=setup["prompt"],
               input_text="where is my order?", output_text=EXPECTED)
    with store.read() as conn:
        before = decisions.count(conn)
    replay(store, d, RUNNER, now=now_us())
    with store.read() as conn:
        assert decisions.count(conn) == before
