"""The eval harness over every backend: what a run resolves, renders, calls, scores and
records. Runners are real: Python callables defined here, and a real OpenAI-compatible
HTTP server (http.server in a thread)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import orjson
import pytest

from modelward.digest import of_text
from modelward.errors import (
    BlobCorruptError,
    UnknownAliasError,
    UnknownArtifactError,
    ValidationError,
)
from modelward.evals.harness.run import EvalSpec, Harness
from modelward.ledger import aliases, artifacts
from modelward.ledger import evals as ledger_evals

ANSWERS = {"What is 2+2?": "4", "Capital of France?": "Paris", "Largest planet?": "Saturn"}
CALLS: list[tuple] = []
EVALSET = [
    {"id": "add", "input": {"q": "What is 2+2?"}, "expected": "4"},
    {"id": "capital", "input": {"q": "Capital of France?"}, "expected": "Paris"},
    {"id": "planet", "input": {"q": "Largest planet?"}, "expected": "Jupiter"},
]
PROMPT_V1 = {"template": "{% for ex in few_shot %}Q: {{ ex.q }}\nA: {{ ex.a }}\n{% endfor %}"
                         "Q: {{ q }}\nA:",
             "system": "Answer in one word.", "few_shot": [{"q": "1+1?", "a": "2"}]}
PROMPT_V2 = "Question: {{ q }}\nAnswer:"


# --- runners and scorers the tests name as MODULE:FUNC ------------------------------------
def answer(prompt, *, model, item):
    CALLS.append((prompt, model, item["id"]))
    return ANSWERS.get(item["input"]["q"], "no idea")


def echo_system(prompt, *, model, item, system):
    return f"{system}|{model}"


def broken(prompt, *, model, item):
    raise RuntimeError("model exploded")


RENDEZVOUS = threading.Barrier(3)


def together(prompt, *, model, item):
    """Returns only once three calls are in flight at the same time (a sequential harness
    would break the barrier: its timeout is far beyond any scheduler hiccup)."""
    RENDEZVOUS.wait(timeout=30)
    return ANSWERS[item["input"]["q"]]


def length_score(output, item):
    return len(output) / 10


# --- a real OpenAI-compatible server --------------------------------------------------------
class ChatServer:
    """POST /v1/chat/completions on 127.0.0.1: answers from ANSWERS, records each request."""

    def __init__(self, *, status: int = 200, delay: float = 0.0, body: bytes | None = None):
        self.requests: list[dict] = []
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server_self.requests.append({"path": self.path, "body": data,
                                             "auth": self.headers.get("Authorization")})
                time.sleep(delay)
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                if status != 200:
                    return self._send(status, b'{"error": {"message": "overloaded"}}')
                user = data["messages"][-1]["content"]
                text = next((a for q, a in ANSWERS.items() if q in user), "no idea")
                reply = body if body is not None else orjson.dumps({
                    "id": "chatcmpl-1", "object": "chat.completion", "model": data["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}]})
                self._send(200, reply)

            def _send(self, code, payload):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- a ledger with a prompt, two models and an eval set -------------------------------------
def build(store, tmp_path) -> SimpleNamespace:
    CALLS.clear()
    put = artifacts.register_bytes
    p1 = put(store, "prompt", orjson.dumps(PROMPT_V1), name="support", version="1").artifact
    p2 = put(store, "prompt", PROMPT_V2.encode(), name="support", version="2").artifact
    hosted = artifacts.register_hosted(store, "openai:gpt-4o-2024-08-06", name="gpt-4o").artifact
    local = put(store, "model", b"weights-v3", name="chat", version="v3").artifact
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in EVALSET))
    with store.write() as conn:
        aliases.set_alias(conn, "prompt/support", p1.digest)
        aliases.set_alias(conn, "chat/v1", hosted.digest)
        aliases.set_alias(conn, "chat/local", local.digest)
    return SimpleNamespace(p1=p1.digest, p2=p2.digest, hosted=hosted.digest, local=local.digest,
                           evalset=path, evalset_digest=of_text(path.read_text()))


def harness(store, env, **kw) -> Harness:
    kw.setdefault("evalset", str(env.evalset))
    kw.setdefault("prompt", "prompt/support")
    kw.setdefault("model", "chat/v1")
    kw.setdefault("runner", "tests.evals.harness.test_harness:answer")
    return Harness(store, EvalSpec(**kw))


@pytest.fixture
def env(ledger, tmp_path):
    return build(ledger.store, tmp_path)


def test_a_run_records_what_it_resolved_rendered_called_and_scored(ledger, env):
    run = harness(ledger.store, env, scorers=("exact", "contains")).run()
    assert (run.status, run.kind, run.error) == ("completed", "task", None)
    assert (run.prompt_alias, run.prompt_digest) == ("prompt/support", env.p1)
    assert (run.model_alias, run.model_digest) == ("chat/v1", env.hosted)
    assert run.evalset_digest == env.evalset_digest  # the file was registered first
    assert run.runner == "tests.evals.harness.test_harness:answer" and run.scorers == ["exact", "contains"]
    assert run.harness_version == "modelward 0.1.0" and run.n_items == 3
    assert run.meta["evalset"] == str(env.evalset)
    s = run.summary
    assert (s["n"], s["passed"], s["errors"]) == (3, 2, 0) and s["pass_rate"] == pytest.approx(2 / 3)
    assert s["scorers"] == {"exact": {"mean": pytest.approx(2 / 3), "pass_rate": pytest.approx(2 / 3)},
                            "contains": {"mean": pytest.approx(2 / 3),
                                         "pass_rate": pytest.approx(2 / 3)}}
    with ledger.store.read() as conn:
        art = artifacts.get(conn, env.evalset_digest)
        items = ledger_evals.results(conn, run.id)
    assert (art.kind, art.name) == ("evalset", "qa.jsonl")
    first = "Q: 1+1?\nA: 2\nQ: What is 2+2?\nA:"  # few-shot block, then the item
    assert [(r.item_index, r.item_id, r.output_text, r.scores, r.passed, r.error)
            for r in items] == [
        (0, "add", "4", {"exact": 1.0, "contains": 1.0}, True, None),
        (1, "capital", "Paris", {"exact": 1.0, "contains": 1.0}, True, None),
        (2, "planet", "Saturn", {"exact": 0.0, "contains": 0.0}, False, None)]
    assert items[0].rendered_text == first and items[0].rendered_digest == of_text(first)
    assert items[2].output_digest == of_text("Saturn") and items[2].latency_ms >= 0
    # the callable got the hosted id as the model, and the item
    assert CALLS[0] == (first, "openai:gpt-4o-2024-08-06", "add")


def test_every_run_resolves_the_alias_and_reads_the_template_again(ledger, env):
    h = harness(ledger.store, env)
    assert h.run().prompt_digest == env.p1
    with ledger.store.write() as conn:
        aliases.set_alias(conn, "prompt/support", env.p2)
    second = h.run()  # the same harness object: nothing it holds names a template
    assert (second.prompt_alias, second.prompt_digest) == ("prompt/support", env.p2)
    with ledger.store.read() as conn:
        rendered = [r.rendered_text for r in ledger_evals.results(conn, second.id)]
    assert rendered[0] == "Question: What is 2+2?\nAnswer:"
    # the template comes from the blob store on every run: damage it and the next run fails
    ledger.store.blobs.path_of(env.p2).write_bytes(b"Question: {{ q }} (tampered)")
    with pytest.raises(BlobCorruptError):
        h.run()


def test_a_local_model_is_passed_by_digest_and_the_system_text_on_request(ledger, env):
    run = harness(ledger.store, env, model="chat/local",
                  runner="tests.evals.harness.test_harness:echo_system").run()
    with ledger.store.read() as conn:
        outputs = {r.output_text for r in ledger_evals.results(conn, run.id)}
    assert outputs == {f"Answer in one word.|{env.local}"}
    assert (run.model_alias, run.model_digest) == ("chat/local", env.local)


def test_digests_and_an_evalset_alias_are_accepted(ledger, env):
    reg = artifacts.register_path(ledger.store, "evalset", env.evalset, name="qa")
    with ledger.store.write() as conn:
        aliases.set_alias(conn, "evals/qa@current", reg.artifact.digest)
    run = harness(ledger.store, env, evalset="evals/qa@current", prompt=env.p2,
                  model=env.local).run()
    assert (run.evalset_digest, run.meta["evalset"]) == (env.evalset_digest, "evals/qa@current")
    assert (run.prompt_alias, run.prompt_digest) == (None, env.p2)
    assert (run.model_alias, run.model_digest) == (None, env.local)
    by_digest = harness(ledger.store, env, evalset=env.evalset_digest).run()
    assert by_digest.evalset_digest == env.evalset_digest and by_digest.meta["evalset"] is None


@pytest.mark.parametrize("kw, error, message", [
    ({"evalset": "missing.jsonl"}, ValidationError,
     "--evalset: 'missing.jsonl' is not a file, a registered digest or an alias"),
    ({"evalset": "sha256:" + "0" * 64}, UnknownArtifactError, "is registered"),
    ({"prompt": "prompt/nope"}, UnknownAliasError, "no alias named 'prompt/nope'"),
    ({"prompt": "chat/v1"}, ValidationError, "--prompt: chat/v1 is a model artifact, not a prompt"),
    ({"model": "prompt/support"}, ValidationError,
     "--model: prompt/support is a prompt artifact, not a model or adapter"),
])
def test_bad_names_fail_before_anything_is_recorded(ledger, env, kw, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(")):
        harness(ledger.store, env, **kw).run()
    with ledger.store.read() as conn:
        assert ledger_evals.list_runs(conn) == []


@pytest.mark.parametrize("kw, message", [
    ({"runner": "not a runner"}, "--runner: not a runner: 'not a runner'"),
    ({"runner": "tests.evals.harness.test_harness:nope"}, "--runner: tests.evals.harness.test_harness has no "
                                                  "callable 'nope'"),
    ({"runner": "no_such_module_xyz:f"}, "--runner: cannot import 'no_such_module_xyz'"),
    ({"runner": "ftp://example.com/v1"}, "--runner: not a runner"),
    ({"runner": "http://user:secret@example.com/v1"}, "must not hold credentials"),
    ({"scorers": ("bleu",)}, "--scorer: unknown scorer 'bleu'"),
    ({"scorers": ("exact", "exact")}, "--scorer: scorer 'exact' is given twice"),
    ({"limit": 0}, "--limit: must be at least 1"),
    ({"concurrency": 0}, "--concurrency: must be from 1 to 256"),
])
def test_bad_options_are_refused_when_the_harness_is_built(ledger, env, kw, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        harness(ledger.store, env, **kw)


def test_item_failures_are_recorded_on_the_item_and_the_run_goes_on(ledger, env):
    bad_prompt = artifacts.register_bytes(ledger.store, "prompt", b"Q: {{ q }} {{ missing }}",
                                          name="broken").artifact.digest
    run = harness(ledger.store, env, prompt=bad_prompt).run()
    assert run.status == "failed" and run.summary["errors"] == 3
    assert run.error.startswith("every item failed; the first: template: prompt sha256:")
    assert "'missing' is undefined" in run.error
    crashed = harness(ledger.store, env, runner="tests.evals.harness.test_harness:broken").run()
    with ledger.store.read() as conn:
        [first, *_] = ledger_evals.results(conn, crashed.id)
    assert first.error == "tests.evals.harness.test_harness:broken raised RuntimeError: model exploded"
    assert (first.output_text, first.scores, first.passed) == (None, {}, False)
    # a scorer that cannot judge one item fails that item only
    partial = harness(ledger.store, env, scorers=("numeric",)).run()
    with ledger.store.read() as conn:
        items = ledger_evals.results(conn, partial.id)
    assert partial.status == "completed"
    assert [(r.scores, r.passed, r.error) for r in items] == [
        ({"numeric": 1.0}, True, None),
        ({}, False, "numeric: expected 'Paris' is not a number"),
        ({}, False, "numeric: expected 'Jupiter' is not a number")]
    assert partial.summary["scorers"]["numeric"] == {"mean": pytest.approx(1 / 3),
                                                     "pass_rate": pytest.approx(1 / 3)}


def test_custom_scorer_with_a_pass_mark_and_limit(ledger, env):
    run = harness(ledger.store, env, limit=2,
                  scorers=("tests.evals.harness.test_harness:length_score@0.4",)).run()
    with ledger.store.read() as conn:
        items = ledger_evals.results(conn, run.id)
    name = "tests.evals.harness.test_harness:length_score@0.4"
    assert [(r.item_id, r.scores[name], r.passed) for r in items] == [
        ("add", 0.1, False), ("capital", 0.5, True)]
    assert run.n_items == 2 and run.meta["limit"] == 2


def test_concurrent_items_keep_their_index(ledger, env):
    RENDEZVOUS.reset()
    run = harness(ledger.store, env, runner="tests.evals.harness.test_harness:together",
                  concurrency=3).run()
    assert run.status == "completed"  # the three calls met at the barrier: run at once
    with ledger.store.read() as conn:
        items = ledger_evals.results(conn, run.id)
    assert [(r.item_index, r.item_id, r.output_text) for r in items] == [
        (0, "add", "4"), (1, "capital", "Paris"), (2, "planet", "Saturn")]


def test_progress_is_reported_per_item(ledger, env):
    seen, begun = [], []
    harness(ledger.store, env).run(progress=lambda done, total: seen.append((done, total)),
                                   started=lambda run_id, total: begun.append(total))
    assert begun == [3] and seen == [(1, 3), (2, 3), (3, 3)]


def test_openai_compatible_server(ledger, env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ChatServer() as server:
        run = harness(ledger.store, env, runner=server.url + "/v1").run()
        local = harness(ledger.store, env, runner=server.url, model="chat/local", limit=1).run()
    assert run.status == "completed" and run.summary["passed"] == 2
    assert run.runner == server.url + "/v1"
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["body"] == {"model": "gpt-4o-2024-08-06", "messages": [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Q: 1+1?\nA: 2\nQ: What is 2+2?\nA:"}]}
    # a URL without a path gets /v1; a model we hold is named by its artifact name
    assert local.status == "completed"
    assert server.requests[-1]["path"] == "/v1/chat/completions"
    assert server.requests[-1]["body"]["model"] == "chat"


@pytest.mark.parametrize("server_kw, runner_kw, message", [
    ({"status": 503}, {}, "POST {url}/v1/chat/completions returned HTTP 503: "
                          '{{"error": {{"message": "overloaded"}}}}'),
    ({"body": b'{"choices": []}'}, {}, "POST {url}/v1/chat/completions did not answer with an "
                                       "OpenAI chat completion (choices[0].message.content): "
                                       "b'{{\"choices\": []}}'"),
    ({"delay": 1.5}, {"timeout": 0.3}, "POST {url}/v1/chat/completions timed out after 0.3s"),
])
def test_http_errors_name_the_url(ledger, env, server_kw, runner_kw, message):
    with ChatServer(**server_kw) as server:
        run = harness(ledger.store, env, runner=server.url + "/v1/", limit=1, **runner_kw).run()
    assert run.status == "failed"
    assert run.error == "every item failed; the first: " + message.format(url=server.url)


def test_an_unreachable_server_is_named(ledger, env):
    with ChatServer() as server:
        url = server.url  # a port that was just freed
    run = harness(ledger.store, env, runner=url + "/v1", limit=1, timeout=5).run()
    assert run.error.startswith(f"every item failed; the first: cannot reach {url}"
                                "/v1/chat/completions: ")


def test_an_interrupted_run_is_marked_failed(ledger, env):
    def stop(done, total):
        raise KeyboardInterrupt

    h = harness(ledger.store, env)
    with pytest.raises(KeyboardInterrupt):
        h.run(progress=stop)
    with ledger.store.read() as conn:
        [run] = ledger_evals.list_runs(conn)
    assert (run.status, run.error, run.n_items) == ("failed", "interrupted", 1)


def test_a_template_that_does_not_compile_fails_before_the_run_starts(ledger, env):
    bad = artifacts.register_bytes(ledger.store, "prompt", b"Q: {% for %}", name="bad").artifact
    with pytest.raises(ValidationError, match="template: prompt sha256:.* failed to render"):
        harness(ledger.store, env, prompt=bad.digest).run()
    with ledger.store.read() as conn:
        assert ledger_evals.list_runs(conn) == []
