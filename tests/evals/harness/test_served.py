"""Eval runs record what the endpoint served each call (model id, fingerprint) and flag a
run scored on a mixture; against a local OpenAI-compatible server."""

from __future__ import annotations

from modelward.cli.evals import render_run
from modelward.ledger import evals as ledger_evals
from modelward.ledger.evals import ItemResult, served_mix
from tests.integrations.openai_server import OpenAIServer

from .test_harness import build, harness


def test_every_call_records_what_served_it_and_a_mix_is_flagged(ledger, tmp_path):
    env = build(ledger.store, tmp_path)
    with OpenAIServer() as server:
        server.state.model = "gpt-4o-2024-08-06"
        steady = harness(ledger.store, env, runner=server.url).run()
        assert steady.summary["served"] == {
            "model_ids": {"gpt-4o-2024-08-06": 3}, "fingerprints": {"fp_one": 3},
            "unreported": 0, "mixed": False}
        calls = {"n": 0}
        real = server.httpd.RequestHandlerClass.do_POST

        def swap_after_first(handler):  # the vendor redeploys mid-run
            calls["n"] += 1
            if calls["n"] == 2:
                server.state.model, server.state.fingerprint = "gpt-4o-2024-11-20", "fp_two"
            return real(handler)

        server.httpd.RequestHandlerClass.do_POST = swap_after_first
        mixed = harness(ledger.store, env, runner=server.url).run()
    with ledger.store.read() as conn:
        rows = ledger_evals.results(conn, mixed.id)
    assert [(r.served_model_id, r.served_fingerprint) for r in rows] == [
        ("gpt-4o-2024-08-06", "fp_one"), ("gpt-4o-2024-11-20", "fp_two"),
        ("gpt-4o-2024-11-20", "fp_two")]
    served = mixed.summary["served"]
    assert served["mixed"] is True
    assert served["model_ids"] == {"gpt-4o-2024-08-06": 1, "gpt-4o-2024-11-20": 2}
    text = render_run(mixed, rows)
    assert ("served  gpt-4o-2024-11-20 (2), gpt-4o-2024-08-06 (1)  fingerprints fp_two (2), "
            "fp_one (1)") in text
    assert "  MIXED: the calls were served by more than one model or fingerprint" in text


def test_python_runners_report_nothing_unless_they_return_served(ledger, tmp_path):
    env = build(ledger.store, tmp_path)
    run = harness(ledger.store, env).run()
    assert run.summary["served"] == {"model_ids": {}, "fingerprints": {}, "unreported": 3,
                                     "mixed": False}
    rows = [ItemResult(i, str(i), None, None, "x", None, {}, True, 1.0, None, m, None)
            for i, m in enumerate(["a", "a", "b"])]
    by_role = served_mix(rows, group=lambda r: "base" if r.item_index < 2 else "candidate")
    assert by_role["mixed"] is False  # each side was served by one model
    assert by_role["candidate"]["model_ids"] == {"b": 1}
