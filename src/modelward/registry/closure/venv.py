"""Rebuild the Python environment a closure recorded, for ``closure reproduce``.

Modes (``--env``):

* ``pip`` — a fresh virtual environment with every recorded distribution installed pinned
  (``name==version``; VCS and URL installs at their recorded commit/URL) with ``--no-deps``,
  since the record already is the full resolved set. modelward itself and distributions
  installed from a local directory or file are skipped; one that pip cannot install is
  skipped and reported. Needs the package index (or ``--pip-arg --find-links=…``).
* ``system`` — a fresh virtual environment that sees the host interpreter's installed
  packages (a ``.pth`` file adds its site-packages), with only the recorded distributions the
  host lacks or has at another version installed on top. Works offline when they match.
* ``current`` — no new environment: the host interpreter runs the command.
* ``auto`` (default) — ``system`` when the host interpreter's environment equals the
  recorded one (Python version, implementation, platform, every distribution and version),
  ``pip`` otherwise.

The host interpreter is the recorded one when it still exists with the recorded Python
version, else the interpreter running modelward.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ModelwardError, ValidationError
from . import env as closure_env

MODES = ("auto", "pip", "system", "current")
NEVER_INSTALLED = {"modelward"}  # the recorder, not part of what is rebuilt


@dataclass
class Environment:
    mode: str  # the mode used (auto resolved)
    python: str  # the interpreter that runs the command
    venv: Path | None
    host: str
    installed: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"name", "reason"}
    snapshot: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "python": self.python,
                "venv": str(self.venv) if self.venv else None, "host": self.host,
                "installed": self.installed, "skipped": self.skipped}


def requirement(info: dict) -> tuple[str | None, str | None]:
    """(pip requirement, None) for a recorded distribution, or (None, why it cannot be)."""
    name, direct = info["name"], info.get("direct_url")
    if normalize(name) in NEVER_INSTALLED:
        return None, "modelward itself is not reinstalled"
    if not direct:
        return f"{name}=={info['version']}", None
    url = direct.get("url", "")
    vcs = direct.get("vcs_info")
    if vcs:
        return f"{name} @ {vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id')}", None
    if "dir_info" in direct or url.startswith("file:"):
        return None, f"installed from a local path ({url})"
    return f"{name} @ {url}", None


def normalize(name: str) -> str:
    return closure_env.normalize(name)


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _host(recorded: dict) -> tuple[str, dict]:
    exe = recorded.get("executable")
    if exe and Path(exe).exists():
        try:
            snap = closure_env.snapshot(exe)
            if snap.get("python") == recorded.get("python"):
                return exe, snap
        except ModelwardError:
            pass
    return sys.executable, closure_env.snapshot(sys.executable)


def _outer_pip() -> bool:
    """Whether this interpreter has pip to drive installs into the new environment with
    ``pip --python`` (fast, no ensurepip); otherwise the environment gets its own pip."""
    return importlib.util.find_spec("pip") is not None


def _pip(venv_python: Path) -> list[str]:
    if _outer_pip():
        return [sys.executable, "-m", "pip", "--python", str(venv_python)]
    return [str(venv_python), "-m", "pip"]


def _create(host: str, venv: Path) -> None:
    args = [host, "-m", "venv", *(["--without-pip"] if _outer_pip() else []), str(venv)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()
        raise ModelwardError(f"cannot create a virtual environment in {venv} with {host}: "
                             + (tail[-1] if tail else f"exit {proc.returncode}"))


def _install(pip: list[str], reqs: list[tuple[str, str]], pip_args: tuple[str, ...],
             log: Path) -> tuple[list[str], list[dict]]:
    """Install all at once; when that fails, one by one, skipping what pip refuses."""
    if not reqs:
        return [], []
    base = [*pip, "install", "--no-deps", "--disable-pip-version-check", "--no-input",
            *pip_args]

    def run(specs: list[str]) -> subprocess.CompletedProcess:
        proc = subprocess.run([*base, *specs], capture_output=True, text=True)
        with open(log, "a") as fh:
            fh.write(f"$ pip install {' '.join(specs)}\n{proc.stdout}{proc.stderr}\n")
        return proc

    if run([r for _n, r in reqs]).returncode == 0:
        return [n for n, _r in reqs], []
    installed, skipped = [], []
    for name, req in reqs:
        proc = run([req])
        if proc.returncode == 0:
            installed.append(name)
        else:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            skipped.append({"name": name, "requirement": req,
                            "reason": lines[-1].strip() if lines else "pip failed"})
    return installed, skipped


def build(recorded: dict, venv: Path, *, mode: str = "auto", pip_args: tuple[str, ...] = (),
          log: Path, progress: Callable[[str], None] = lambda _m: None) -> Environment:
    """Make the environment the command re-runs in (see the module docstring)."""
    if mode not in MODES:
        raise ValidationError(f"unknown environment mode {mode!r}; choose one of "
                              + ", ".join(MODES), field="--env")
    if not recorded.get("distributions") and mode != "current":
        raise ValidationError("the closure recorded no distributions to rebuild from",
                              field="--env", hint="use --env current to run with this "
                                                  "interpreter as it is")
    host, host_snap = _host(recorded)
    same = not closure_env.compare(recorded, host_snap)
    if mode == "auto":
        mode = "system" if same else "pip"
    if mode == "current":
        return Environment("current", host, None, host, snapshot=host_snap)
    progress(f"creating a virtual environment ({mode}) in {venv}")
    _create(host, venv)
    python = _venv_python(venv)
    if mode == "system":
        site_dir = Path(closure_env.snapshot(str(python))["site_packages"][0])
        lines = [f"import site; site.addsitedir({p!r})\n" for p in host_snap["site_packages"]]
        (site_dir / "_modelward_host_site.pth").write_text("".join(lines))
    recorded_dists = recorded["distributions"]
    have = closure_env.versions(host_snap) if mode == "system" else {}
    reqs, skipped = [], []
    for key, info in sorted(recorded_dists.items()):
        if have.get(key) == info["version"]:
            continue
        req, why = requirement(info)
        if req is None:
            skipped.append({"name": key, "reason": why})
        else:
            reqs.append((key, req))
    if reqs:
        progress(f"installing {len(reqs)} distribution(s) with pip")
    installed, refused = _install(_pip(python), reqs, pip_args, log)
    env = Environment(mode, str(python), venv, host, installed, skipped + refused)
    env.snapshot = closure_env.snapshot(str(python))
    return env
