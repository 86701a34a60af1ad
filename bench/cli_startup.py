"""CLI start-up: `modelward --help` and `modelward alias resolve` against the raw limit.

Runs each command ``--repeats`` times (default 10), interleaved so that every command sees
the same background load, and prints the median wall time and the median CPU time (user +
system of the child; less sensitive to other work on the machine) of each:

* ``python -c pass`` — the interpreter's own start-up, the limit nothing can beat;
* ``modelward --help`` (target ≤ 150 ms) and ``modelward alias resolve`` on a small SQLite
  ledger (target ≤ 250 ms);
* ``mlflow --help`` — a peer's CLI, when mlflow is installed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

BENCH = "cli_startup"
TARGETS_MS = {"help": 150.0, "alias_resolve": 250.0}


def _run(argv: list[str], env: dict) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1000, cpu * 1000


def _ledger(home: Path, env: dict, mw: list[str]) -> None:
    mw = [*mw, "--home", str(home)]
    prompt = home.parent / "prompt.txt"
    prompt.write_text("You are a helpful assistant.\n")
    subprocess.run([*mw, "init"], env=env, check=True, capture_output=True)
    reg = subprocess.run([*mw, "register", "prompt", str(prompt), "--name", "support"],
                         env=env, check=True, capture_output=True, text=True)
    digest = next(w for w in reg.stdout.split() if w.startswith("sha256:"))
    subprocess.run([*mw, "alias", "set", "chat/prompt", digest, "--actor", "dev@example.com"],
                   env=env, check=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    ap.add_argument("--src", default=str(c.SRC),
                    help="the modelward source tree to measure (another checkout: a baseline)")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    env = {**os.environ, "PYTHONPATH": args.src}
    env = {k: v for k, v in env.items() if not k.startswith("MODELWARD_")}
    # the console script users run (`pip install` makes it), else the module
    script = shutil.which("modelward", path=str(Path(sys.executable).parent))
    mw = [script] if script else [sys.executable, "-m", "modelward.cli.app"]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        _ledger(home, env, mw)
        commands = {
            "python_pass": [sys.executable, "-c", "pass"],
            "help": [*mw, "--help"],
            "alias_resolve": [*mw, "--home", str(home), "alias", "resolve", "chat/prompt"],
        }
        mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent))
        if mlflow:
            commands["mlflow_help"] = [mlflow, "--help"]
        for argv_ in commands.values():  # warm the file cache once
            _run(argv_, env)
        walls: dict[str, list[float]] = {k: [] for k in commands}
        cpus: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(repeats):
            for name, argv_ in commands.items():
                wall, cpu = _run(argv_, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    for name in commands:
        c.emit(BENCH, f"{name}_ms", c.median(walls[name]), "ms",
               cpu_ms=round(c.median(cpus[name]), 1), target_ms=TARGETS_MS.get(name),
               src=args.src, **c.spread(walls[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
