"""What ``make demo`` installs: the extras named on its install line, and the distributions
that ``modelward[extras]`` pulls in (the closure of its requirements, read from
pyproject.toml and the installed distributions' metadata)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
HOOK = Path(__file__).resolve().parent / "data" / "demo_extras_only"


def dry_run(target: str, tmp_path: Path) -> list[str]:
    """``make -n TARGET`` in a copy of the build files without a .venv: every command a fresh
    clone would run."""
    work = tmp_path / "clone"
    work.mkdir(exist_ok=True)
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, work / name)
    proc = subprocess.run(["make", "--no-print-directory", "-n", target], cwd=work,
                          env=make_env(), capture_output=True, text=True, timeout=60,
                          check=True)
    return proc.stdout.splitlines()


def make_env() -> dict[str, str]:
    """The environment without the outer make's variables (under `make test` these would
    make ours a sub-make, with its own messages and flags)."""
    return {k: v for k, v in os.environ.items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PYTHON")}


def pip_install_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r"-m pip install\b", line)]


def extras_of(install_line: str) -> list[str]:
    """``-e '.[a,b]'`` -> ["a", "b"]; the one editable install of this project."""
    m = re.search(r"-e '?\.\[([^\]]*)\]'?", install_line)
    assert m, install_line
    return [e.strip() for e in m.group(1).split(",") if e.strip()]


def closure(extras: list[str]) -> set[str]:
    """Canonical names of the distributions ``pip install .[extras]`` installs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = [Requirement(r) for r in project["dependencies"]]
    optional = project["optional-dependencies"]
    pending = list(extras)
    done_extras: set[str] = set()
    while pending:  # an extra may name others: modelward[postgres,server]
        extra = pending.pop()
        if extra in done_extras:
            continue
        done_extras.add(extra)
        for r in map(Requirement, optional[extra]):
            if canonicalize_name(r.name) == "modelward":
                pending.extend(r.extras)
            else:
                want.append(r)
    seen: set[str] = {"modelward"}
    while want:
        req = want.pop()
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing of it can be imported anyway
        for sub in map(Requirement, dist.requires or []):
            if sub.marker is None or sub.marker.evaluate({"extra": ""}) or any(
                    sub.marker.evaluate({"extra": e}) for e in req.extras):
                want.append(sub)
    return seen


def blocked_modules(allowed: set[str]) -> set[str]:
    """Top-level modules provided only by installed distributions outside ``allowed``."""
    blocked = set()
    for module, dists in metadata.packages_distributions().items():
        if module in ("modelward", "demo") or module.startswith("_distutils"):
            continue
        if not {canonicalize_name(d) for d in dists} & allowed:
            blocked.add(module)
    return blocked


def env_with_only(extras: list[str], tmp_path: Path) -> dict[str, str]:
    """The environment for a run that can import only what ``.[extras]`` installs."""
    listing = tmp_path / "blocked-modules.json"
    # a fresh virtual environment (Python 3.11) starts with pip and setuptools
    allowed = closure(extras) | {"pip", "setuptools"}
    listing.write_text(json.dumps(sorted(blocked_modules(allowed))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HOOK), env.get("PYTHONPATH")) if p)
    env["MODELWARD_TEST_BLOCKED_MODULES"] = str(listing)
    return env
