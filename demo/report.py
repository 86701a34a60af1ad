"""Telling the story: run the real ``modelward`` CLI on the demo ledger and print it.

``modelward check`` and ``modelward audit`` run as subprocesses of the installed console
script with ``MODELWARD_HOME`` set to the demo ledger, in the ledger's own directory and
with every other ``MODELWARD_*`` variable removed, so nothing of the caller's configuration
(a modelward.toml, a database URL) leaks into the demo.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from modelward.ledger import aliases as ledger_aliases
from modelward.ledger import artifacts as ledger_artifacts
from modelward.ledger.engine import Store
from modelward.settings import Settings
from modelward.timefmt import iso

from .episodes import covers
from .world import Expected


def modelward_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m modelward.cli.app``."""
    script = Path(sys.executable).with_name("modelward")
    if script.is_file():
        return [str(script)]
    found = shutil.which("modelward")
    return [found] if found else [sys.executable, "-m", "modelward.cli.app"]


def activate_hint() -> str | None:
    """The command that puts ``modelward`` on the reader's PATH: the demo runs in a virtual
    environment (``make demo``: ./.venv) that the reader's shell has not activated. None
    when the console script is already on PATH, or there is no virtual environment."""
    script = Path(sys.prefix) / "bin" / "modelward"
    if sys.prefix == sys.base_prefix or not script.is_file():
        return None
    found = shutil.which("modelward")
    if found and Path(found).resolve() == script.resolve():
        return None
    activate = Path(sys.prefix) / "bin" / "activate"
    if activate.is_relative_to(Path.cwd()):
        activate = activate.relative_to(Path.cwd())
    return f". {activate}"


def cli_env(path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWARD_")}
    env["MODELWARD_HOME"] = str(path)
    # the demo's runner module (demo.runner) must import in `modelward replay`
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run(path: Path, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    """``modelward ARGS`` on the demo ledger; output captured, or passed straight through."""
    sys.stdout.flush()
    return subprocess.run([*modelward_command(), *args], cwd=path, env=cli_env(path),
                          capture_output=capture, text=True, timeout=300)


def check_findings(path: Path) -> list[dict]:
    """``modelward check --format json`` parsed: the findings as dicts."""
    proc = run(path, "check", "--format", "json", "--exit-zero")
    if proc.returncode != 0:
        raise RuntimeError(f"modelward check failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)["findings"]


def audit_report(path: Path, decision_id: str) -> dict:
    proc = run(path, "audit", decision_id, "--json")
    if proc.returncode != 0:
        raise RuntimeError(f"modelward audit failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


@dataclass
class Reconciliation:
    matched: list[Expected]
    missing: list[Expected]      # planted, not found
    unexpected: list[dict]       # found by a covered guard, not planted
    uncovered: list[dict]        # found by a guard the scenario does not script yet

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def reconcile(expected: list[Expected], findings: list[dict]) -> Reconciliation:
    """Pair each planted finding with one reported finding; what a covered guard reports
    beyond that is wrong."""
    left = [f for f in findings if covers(f["code"])]
    matched, missing = [], []
    for e in expected:
        hit = next((f for f in left if e.matches(f)), None)
        if hit is None:
            missing.append(e)
        else:
            left.remove(hit)
            matched.append(e)
    return Reconciliation(matched=matched, missing=missing, unexpected=left,
                          uncovered=[f for f in findings if not covers(f["code"])])


def heading(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def timeline(path: Path) -> list[str]:
    """Every alias move in the ledger, oldest first, with the artifact's name and version."""
    store = Store(Settings({"home": str(path),
                            "database_url": f"sqlite:///{path / 'ledger.db'}",
                            "blob_url": str(path / "blobs")}))
    try:
        with store.read() as conn:
            events = sorted(ledger_aliases.all_events(conn), key=lambda e: (e.at, e.id))
            names = {a.digest: (f"{a.name}@{a.version}" if a.version else a.hosted_id or a.name)
                     for a in ledger_artifacts.list_artifacts(conn)}
    finally:
        store.dispose()
    width = max((len(n) for n in names.values()), default=0)
    return [f"{iso(e.at)[:16].replace('T', ' ')}  {e.alias:<26} {e.kind:<8} -> "
            f"{names.get(e.digest, e.digest[:19]):<{width}}  {e.reason or ''}" for e in events]
