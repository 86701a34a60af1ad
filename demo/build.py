"""``make demo``: build ./demo-ledger from the Acme support scenario, run the guards on it,
and audit a decision from the first month.

    python demo/build.py [PATH]        # default ./demo-ledger (deleted and rebuilt)

Exits 1 when the guards' findings differ from what the scenario planted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo import report  # noqa: E402
from demo import serve as demo_serve  # noqa: E402
from demo.catalogue import COVERED, EPISODES  # noqa: E402
from demo.replay import RUNNER as REPLAY_RUNNER  # noqa: E402
from demo.scenario import build  # noqa: E402
from demo.world import HOUR  # noqa: E402
from modelward.timefmt import iso  # noqa: E402


def explore_commands(result, shown) -> list[tuple[str, str | None]]:
    """The commands "Explore it yourself" prints, with a comment each: run from the
    directory the demo was built in, they reproduce the demo's findings exactly (the
    configuration lives in the ledger's home, tests/test_demo.py runs them)."""
    rollback = next(m for m in result.moves if m.label == "chat/v1:rollback")
    return [
        (f"export MODELWARD_HOME={shown}", None),
        ("modelward check", f"the same {len(result.expected)} findings as above"),
        ("modelward alias history chat/v1", None),
        (f"modelward alias resolve chat/v1 --at {iso(rollback.at - 3 * HOUR)}",
         "inside the bad six hours"),
        ("modelward check --format sarif --output demo.sarif", None),
        ("modelward explain MW105", None),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="demo-ledger", type=Path,
                        help="where to build the ledger (deleted first; default demo-ledger)")
    args = parser.parse_args(argv)

    report.heading("Building the Acme support ledger")
    try:
        result = build(args.path)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = result.path
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    counts = ", ".join(f"{alias} {n:,}" for alias, n in sorted(result.by_alias.items()))
    print(f"{shown}/: eight months of a customer-support assistant, ending {iso(result.now)}")
    print(f"{result.decisions:,} decisions in {result.blocks:,} chain blocks ({counts}); "
          f"{len(result.digests)} artifacts; built in {result.seconds:.1f} s")

    report.heading("What the alias history says happened")
    for line in report.timeline(path):
        print("  " + line)

    report.heading("What nobody noticed at the time (planted incidents)")
    for ep in EPISODES:
        if ep.kind == "incident":
            print(f"  {ep.name:<24} {ep.title}")
    report.heading("Clean stretches that must raise nothing")
    for ep in EPISODES:
        if ep.kind == "control":
            print(f"  {ep.name:<24} {ep.title}")
    print(f"  {'baseline':<24} routine rotations v1.0 -> v1.1 -> v1.2; triage on a hosted "
          "model whose vendor id never changed; every other payload present")

    report.heading(f"$ modelward check        (MODELWARD_HOME={shown})")
    report.run(path, "check", capture=False)

    report.heading("Did every planted incident fire, and nothing else?  (guards "
                   + ", ".join(f"{p}xx" if len(p) == 3 else p for p in COVERED) + ")")
    findings = report.check_findings(path)
    rec = report.reconcile(result.expected, findings)
    for e in rec.matched:
        print(f"  ok         {e.describe()}   <- {e.episode}")
    for e in rec.missing:
        print(f"  MISSING    {e.describe()}   <- {e.episode}")
    for f in rec.unexpected:
        print(f"  UNPLANTED  {f['code']} {f['subject']}: {f['message']}")
    if rec.uncovered:
        codes = sorted({f["code"] for f in rec.uncovered})
        print(f"  (not judged: {', '.join(codes)} - guards this scenario does not script yet "
              f"({len(rec.uncovered)} findings); see docs/demo.md, \"Extending it\")")

    report.heading("An auditor asks which model produced a decision from the first month")
    print(f"$ modelward audit {result.audit_decision_id}", flush=True)
    audited = report.run(path, "audit", result.audit_decision_id, capture=False)
    if audited.returncode != 0:
        print(f"(modelward audit is not available in this install; chat/v1 pointed to "
              f"{result.audit_alias_digest} then)")

    stale = next((f["evidence"] for f in findings if f["code"] == "MW105"), None)
    if audited.returncode == 0 and stale and stale.get("first_decision"):
        report.heading(f"...and one that {stale['process']} served after chat/v1 had moved on")
        print(f"$ modelward audit {stale['first_decision']}", flush=True)
        report.run(path, "audit", stale["first_decision"], capture=False)

    for key, story in (("replay_unretained", "A bug report quotes an answer v1.1 gave: can we "
                                            "re-run it?"),
                       ("replay_retained", "...and one from this week, whose model, prompt "
                                           "and input are all retained")):
        if key in result.notes:
            report.heading(story)
            print(f"$ modelward replay {result.notes[key]} --runner {REPLAY_RUNNER}", flush=True)
            report.run(path, "replay", str(result.notes[key]), "--runner", REPLAY_RUNNER,
                       capture=False)

    report.heading("Explore it yourself")
    activate = report.activate_hint()
    if activate:
        print(f"  {activate}   # puts modelward on PATH in this shell (or: make shell)")
    for command, comment in explore_commands(result, shown):
        print(f"  {command}" + (f"   # {comment}" if comment else ""))
    if not rec.ok:
        print("\nthe guards' findings differ from what the scenario planted", file=sys.stderr)
        return 1
    if demo_serve.wanted():  # a terminal, and MODELWARD_DEMO_NO_SERVE unset
        return demo_serve.serve(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
