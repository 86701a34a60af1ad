"""``modelward check`` imports scipy only when a guard computes a statistic with it: the full
guard set over a ledger of decisions and an alias imports none of it, while a check where
MW401 and MW403 judge an experiment does, with the same findings and p-values as when
scipy was imported up front."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import modelward

from ..rollout.world import create, expose
from .builders import HOUR, MIN, T0, move, put, record


def _check(home: str, tmp_path) -> tuple[dict, set[str]]:
    """``modelward --home HOME check --no-record --format json`` in a fresh interpreter
    through the console script's entry point: (the report, the modules it loaded)."""
    code = textwrap.dedent(f"""
        import sys
        from modelward.cli.app import main
        try:
            main(["--home", {home!r}, "check", "--no-record", "--format", "json"])
        except SystemExit:
            pass
        print("\\n".join(sorted(sys.modules)), file=sys.stderr)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=dict(os.environ), timeout=120)
    return json.loads(proc.stdout), set(proc.stderr.split())


def _scipy(loaded: set[str]) -> set[str]:
    return {m for m in loaded if m.split(".")[0] == "scipy"}


def _ledger(home: str):
    """chat/v1 moved v3 -> v4; 200 ordinary decisions through the alias afterwards."""
    led = modelward.open(home)
    v3 = put(led.store, "model", b"weights-v3", "chat", "v3")
    v4 = put(led.store, "model", b"weights-v4", "chat", "v4")
    move(led.store, "chat/v1", v3, T0)
    move(led.store, "chat/v1", v4, T0 + HOUR)
    record(led.store, [dict(at=T0 + 2 * HOUR + i * MIN, alias="chat/v1", model_digest=v4,
                            process="web-1") for i in range(200)])
    return led


def test_the_full_guard_set_imports_no_scipy_when_nothing_needs_it(tmp_path):
    home = str(tmp_path / "home")
    _ledger(home).close()
    report, loaded = _check(home, tmp_path)
    assert "modelward.guards.runner" in loaded
    assert len(report["guards_run"]) + len(report["skipped"]) >= 24  # every guard ran
    assert {"MW401", "MW403", "MW404", "MW502"} <= set(report["guards_run"])
    assert report["findings"] == []
    assert _scipy(loaded) == set()


def test_a_guard_that_computes_still_imports_scipy_with_the_same_findings(tmp_path):
    home = str(tmp_path / "home")
    led = _ledger(home)
    # MW401's scenario: a quarter of the treatment crashes before expose(), on a 95/5 split
    exp = create(led.store, "checkout-v2", "c:1")
    pairs = [(f"u-{i}", exp.assign(f"u-{i}")) for i in range(10_000)]
    treated = [p for p in pairs if p[1] == "treatment"]
    lost = {s for s, _ in treated[: len(treated) // 4]}
    expose(led.store, "checkout-v2", [p for p in pairs if p[0] not in lost], step=10_000)
    led.close()
    report, loaded = _check(home, tmp_path)
    assert {"scipy.stats", "scipy.special"} <= _scipy(loaded)
    found = {f["code"]: f for f in report["findings"]}
    assert sorted(found) == ["MW401", "MW403"]
    # the figures of the same check with scipy imported at module level, to the last bit
    srm = found["MW401"]["evidence"]
    assert srm["counts"] == {"control": 9524, "treatment": 357}
    assert (srm["chi2"], srm["p_value"]) == (40.018754760598526, 2.5153615689391457e-10)
    order = found["MW403"]["evidence"]
    assert (order["test"], order["statistic"], order["p_value"], order["p_adjusted"]) == (
        "id-rank", 2096004.0, 7.254597960461828e-14, 2.1763793881385482e-13)
