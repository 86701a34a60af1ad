"""``modelward fingerprint`` and ``modelward threshold`` end to end, exact output."""

from __future__ import annotations

import orjson

MOD = "tests.retrieval.embedders"


def _embedder(cli):
    digest = cli.ok("register", "embedder", "--hosted", "acme:embed-small", "--name",
                    "embed-small").strip()
    cli.ok("alias", "set", "embed/search", digest, "--at", "2026-03-01T00:00:00Z")
    return digest


def test_fingerprint_run_history_and_compare(cli):
    digest = _embedder(cli)
    first = cli.ok("fingerprint", "run", "embed/search", "--runner", f"{MOD}:hashing",
                   "--at", "2026-03-01T06:00:00Z")
    second = cli.ok("fingerprint", "run", "embed/search", "--runner", f"{MOD}:rotated",
                    "--repeats", "2", "--at", "2026-03-02T06:00:00Z")
    runs = orjson.loads(cli.ok("fingerprint", "history", "embed/search", "--json"))
    a, b = runs
    assert first == (
        f"embed/search -> {digest}\n"
        f"run {a['id']} at 2026-03-01T06:00:00Z: 72 probes x 3 repeats, 48 dims, "
        "noise floor 1.00e-04\n"
        "baseline: epoch 1, noise floor 1.00e-04 (3 repeats, 48 dims)\n")
    cmp = b["summary"]["comparison"]
    worst = ", ".join(f"{w['probe']} {w['cosine']:.4f}" for w in cmp["worst_probes"])
    expected_second = (
        f"embed/search -> {digest}\n"
        f"run {b['id']} at 2026-03-02T06:00:00Z: 72 probes x 2 repeats, 48 dims, "
        "noise floor 1.00e-04\n"
        f"compared with {a['id']} at 2026-03-01T06:00:00Z (epoch 1, {digest})\n"
        f"CHANGED: magnitude {b['magnitude']:.2e} vs threshold 1.00e-01 (median per-probe "
        f"cosine {cmp['median_cosine']:.6f}, similarity-matrix correlation "
        f"{cmp['matrix_correlation']:.6f}); 1 baseline run, fewer than the 3 needed to "
        "measure the noise between runs: inconclusive below the gross bound (median "
        "per-probe cosine 0.900); epoch 2\n"
        f"lowest per-probe cosine: {worst}\n")
    assert second == expected_second
    assert cli.ok("fingerprint", "compare", "embed/search") == expected_second
    assert cli.ok("fingerprint", "history", "embed/search") == (
        f"2026-03-01T06:00:00Z  epoch 1  baseline  magnitude -         noise 1.00e-04  {digest}\n"
        f"2026-03-02T06:00:00Z  epoch 2  changed   magnitude {b['magnitude']:.2e}  "
        f"noise 1.00e-04  {digest}\n")
    check = cli("check", "--select", "MW501", "--format", "json")
    assert check.code == 1
    assert [f["code"] for f in orjson.loads(check.out)["findings"]] == ["MW501"]


def test_fingerprint_errors_are_one_line_and_exit_2(cli):
    _embedder(cli)
    res = cli("fingerprint", "run", "embed/search", "--runner", "nope")
    assert (res.code, res.out) == (2, "")
    assert res.err == ("error: --runner: not an embedding runner: 'nope'\n"
                       "hint: give MODULE:FUNC or the URL of an OpenAI-compatible server, "
                       "e.g. http://localhost:8000/v1\n")
    res = cli("fingerprint", "compare", "embed/search")
    assert (res.code, res.err) == (2, "error: embed/search has no fingerprint runs\n"
                                      "hint: run `modelward fingerprint run embed/search "
                                      "--runner …`\n")


def test_threshold_calibrate_recalibrate_show_and_list(cli, tmp_path):
    e1 = cli.ok("register", "embedder", "--hosted", "acme:e5-v1", "--name", "e5").strip()
    e2 = cli.ok("register", "embedder", "--hosted", "acme:e5-v2", "--name", "e5").strip()
    cli.ok("alias", "set", "embed/search", e1, "--at", "2026-03-01T00:00:00Z")
    old = tmp_path / "old.csv"
    old.write_text("query,score\n" + "".join(f"q{i % 5},{i / 100}\n" for i in range(100)))
    new = tmp_path / "new.txt"
    new.write_text("".join(f"{i / 200}\n" for i in range(100)))  # 0.000 … 0.495
    out = cli.ok("threshold", "calibrate", "rag/gate", "--scores", old, "--target-pass-rate",
                 "0.35", "--embedder", "embed/search", "--at", "2026-03-01T12:00:00Z",
                 "--actor", "ml@example.com")
    ref1 = orjson.loads(cli.ok("threshold", "show", "rag/gate", "--json"))[0]["reference_digest"]
    assert out == (f"rag/gate v1: cut 0.65 (pass rate 35.00%; 35.00% of 100 reference scores "
                   f"pass)\nreference {ref1}\nsubstrate: embedder embed/search = {e1}\n")
    cli.ok("alias", "set", "embed/search", e2, "--at", "2026-03-02T00:00:00Z")
    out = cli.ok("threshold", "recalibrate", "rag/gate", "--scores", new, "--reason", "e5-v2",
                 "--at", "2026-03-02T12:00:00Z")
    ref2 = orjson.loads(cli.ok("threshold", "show", "rag/gate", "--json"))[1]["reference_digest"]
    assert out == (f"rag/gate v2: cut 0.325 (pass rate 35.00%; 35.00% of 100 reference scores "
                   f"pass)\nold cut 0.65 (v1) -> new cut 0.325; the old cut would pass 0.00% of "
                   f"the new reference scores\nreference {ref2}\n"
                   f"substrate: embedder embed/search = {e2}\n")
    assert cli.ok("threshold", "show", "rag/gate") == (
        "v1  2026-03-01T12:00:00Z  cut 0.65  pass rate 35.00% by ml@example.com\n"
        f"    reference {ref1}; substrate: embedder embed/search = {e1}\n"
        "v2  2026-03-02T12:00:00Z  cut 0.325 (was 0.65)  pass rate 35.00% (e5-v2)\n"
        f"    reference {ref2}; substrate: embedder embed/search = {e2}\n")
    q = cli.ok("threshold", "calibrate", "rag/q", "--scores", new, "--quantile", "0.9",
               "--at", "2026-03-02T12:00:00Z", "--json")
    assert round(orjson.loads(q)["policy"]["cut"], 9) == 0.4455
    assert cli.ok("threshold", "list") == (
        f"{'rag/gate':<32}  v2  cut 0.325  pass rate 35.00%  since 2026-03-02T12:00:00Z\n"
        f"{'rag/q':<32}  v1  cut 0.4455  quantile 0.9 (pass rate 10.00%)  "
        "since 2026-03-02T12:00:00Z\n")


def test_threshold_errors_are_one_line_and_exit_2(cli, tmp_path):
    scores = tmp_path / "s.txt"
    scores.write_text("0.1\n0.2\n")
    res = cli("threshold", "calibrate", "g", "--scores", scores)
    assert (res.code, res.err) == (2, "error: --target-pass-rate: give exactly one of "
                                      "--target-pass-rate and --quantile\n")
    res = cli("threshold", "calibrate", "g", "--scores", scores, "--target-pass-rate", "1.5")
    assert (res.code, res.err) == (2, "error: --target-pass-rate: 1.5 is not a pass rate in "
                                      "(0, 1]\n")
    res = cli("threshold", "show", "g")
    assert (res.code, res.err) == (2, "error: no threshold policy named 'g'\nhint: calibrate "
                                      "one with `modelward threshold calibrate`\n")
    assert cli.ok("threshold", "list") == "no threshold policies\n"
