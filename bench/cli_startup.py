"""CLI start-up: `modelward --help` and `modelward alias resolve` against the raw limit.

Runs each command ``--repeats`` times (default 10), interleaved so that every command sees
the same background load, and prints the median wall time and the median CPU time (user +
system of the child; less sensitive to other work on the machine) of each:

* ``python -c pass`` — the interpreter's own start-up, the limit nothing can beat;
* ``modelward --help`` (target ≤ 150 ms) and ``modelward alias resolve`` on a small SQLite
  ledger (target ≤ 250 ms);
* ``alias_resolve_deps_floor`` — the other limit of ``alias resolve``: the same
  third-party and standard-library modules it loads (SQLAlchemy, Typer and the pydantic
  Typer validates parameters through, Rich, sqlite3 …), listed from one run of the command
  and imported in the same order by a bare interpreter, with no modelward module and no
  ledger; ``alias_resolve_own_ms`` is what modelward adds on top of it (the medians'
  difference);
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


# Run once with the command's own argv: the modules it left loaded, in load order.
_LIST_MODULES = """
import json, runpy, sys
out, sys.argv = sys.argv[1], ["modelward", *sys.argv[2:]]
try:
    runpy.run_module("modelward.cli.app", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
with open(out, "w") as fh:
    json.dump(list(sys.modules), fh)
"""

# Import the listed modules (modelward's own and the runner's left out), in that order.
_IMPORT_MODULES = """
import importlib, json, sys
for name in json.load(open(sys.argv[1])):
    if name.split(".")[0] in ("modelward", "__main__", "runpy", "__mp_main__"):
        continue
    try:
        importlib.import_module(name)
    except Exception:
        pass  # a name some package puts in sys.modules by hand (an alias), not a module
"""


def _deps_floor(argv: list[str], env: dict, tmp: Path) -> list[str]:
    """A command that imports what ``modelward ARGV`` imports, minus modelward."""
    listing = tmp / "modules.json"
    subprocess.run([sys.executable, "-c", _LIST_MODULES, str(listing), *argv], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return [sys.executable, "-c", _IMPORT_MODULES, str(listing)]


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
    # bytecode cached, as a pip-installed package has it (with PYTHONDONTWRITEBYTECODE set,
    # an editable tree would otherwise be compiled again by every run)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(args.src) / "modelward")],
                   check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        _ledger(home, env, mw)
        commands = {
            "python_pass": [sys.executable, "-c", "pass"],
            "help": [*mw, "--help"],
            "alias_resolve": [*mw, "--home", str(home), "alias", "resolve", "chat/prompt"],
            "alias_resolve_deps_floor": _deps_floor(
                ["--home", str(home), "alias", "resolve", "chat/prompt"], env, Path(tmp)),
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
    own = c.median(walls["alias_resolve"]) - c.median(walls["alias_resolve_deps_floor"])
    c.emit(BENCH, "alias_resolve_own_ms", own, "ms",
           note="alias_resolve_ms minus alias_resolve_deps_floor_ms (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
