"""The environment half of a training closure: the interpreter's installed distributions,
lock files, hardware, and how two environments differ.

The distributions are listed by running a small script with the interpreter the command
uses (not necessarily the one running modelward), so the record names what the training
actually imported from.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from ...errors import ModelwardError

LOCK_PATTERNS = ("requirements*.txt", "constraints.txt", "poetry.lock", "uv.lock",
                 "Pipfile.lock", "pyproject.toml")
MAX_LOCK_FILE = 8 * 1024 * 1024

_SNAPSHOT = r"""
import json, os, platform, re, site, sys, sysconfig
from importlib import metadata
dists = {}
for d in metadata.distributions():
    name = d.metadata["Name"]
    if not name:
        continue
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in dists:
        continue  # the first on sys.path is the one that imports
    try:
        direct = json.loads(d.read_text("direct_url.json") or "null")
    except Exception:
        direct = None
    dists[key] = {"name": name, "version": d.version, "direct_url": direct}
dirs = list(getattr(site, "getsitepackages", lambda: [])())
user = site.getusersitepackages() if site.ENABLE_USER_SITE else None
if user and user in sys.path:
    dirs.append(user)
print(json.dumps({
    "python": platform.python_version(), "implementation": platform.python_implementation(),
    "platform": sysconfig.get_platform(), "system": platform.platform(),
    "executable": sys.executable, "prefix": sys.prefix,
    "site_packages": [p for p in dirs if os.path.isdir(p)], "distributions": dists}))
"""


def normalize(name: str) -> str:
    """PEP 503 name: ``Typing_Extensions`` -> ``typing-extensions``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_python(argv0: str) -> bool:
    """Whether a command's first word is a Python interpreter (``python``, ``python3.11``…)."""
    return re.fullmatch(r"python(\d+(\.\d+)?)?(\.exe)?", Path(argv0).name) is not None


def interpreter_for(command: list[str], env: dict | None = None) -> str:
    """The interpreter whose packages the command imports: its first word when that is a
    Python, else the one running modelward."""
    if command and is_python(command[0]):
        found = shutil.which(command[0], path=(env or os.environ).get("PATH"))
        if found:
            return os.path.abspath(found)
    return sys.executable


def snapshot(python: str, env: dict | None = None) -> dict:
    """Python version, implementation, platform and installed distributions of ``python``."""
    clean = {k: v for k, v in (env or os.environ).items() if k != "PYTHONSTARTUP"}
    try:
        proc = subprocess.run([python, "-c", _SNAPSHOT], capture_output=True, env=clean,
                              cwd=tempfile.gettempdir(), timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelwardError(f"cannot list the distributions of {python}: {exc}") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ModelwardError(f"cannot list the distributions of {python}: "
                             + (tail[-1] if tail else f"exit {proc.returncode}"))
    return orjson.loads(proc.stdout)


def lock_files(dirs: list[Path]) -> list[Path]:
    """Lock and requirement files at the top of ``dirs`` (the repository and the command's
    directory), each once, sorted."""
    found: dict[Path, None] = {}
    for d in dirs:
        for pattern in LOCK_PATTERNS:
            for p in sorted(d.glob(pattern)):
                if p.is_file() and p.stat().st_size <= MAX_LOCK_FILE:
                    found[p.resolve()] = None
    return sorted(found)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _nvidia() -> dict:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"gpus": [], "nvidia_smi": None}
    out: dict = {"gpus": [], "nvidia_smi": exe, "driver": None, "cuda": None}
    try:
        query = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total",
             "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=20)
        for line in query.stdout.strip().splitlines():
            name, driver, mem = [p.strip() for p in (line.split(",") + ["", ""])[:3]]
            out["gpus"].append({"name": name, "memory_mib": int(mem) if mem.isdigit() else None})
            out["driver"] = driver or out["driver"]
        banner = subprocess.run([exe], capture_output=True, text=True, timeout=20).stdout
        m = re.search(r"CUDA Version:\s*([\d.]+)", banner)
        out["cuda"] = m.group(1) if m else None
    except (OSError, subprocess.TimeoutExpired) as exc:
        out["error"] = str(exc)
    return out


def hardware() -> dict:
    """CPU model and count, memory, and NVIDIA GPUs with driver and CUDA version."""
    return {"cpu": _cpu_model(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "memory_bytes": _memory(), **_nvidia()}


def versions(env: dict) -> dict[str, str]:
    return {k: v["version"] for k, v in env.get("distributions", {}).items()}


def compare(recorded: dict, actual: dict, *, ignore=()) -> list[dict]:
    """How ``actual`` differs from ``recorded``: interpreter fields, then distributions
    missing, extra or at another version (names in ``ignore`` are left out)."""
    diffs = []
    for key in ("python", "implementation", "platform"):
        if recorded.get(key) != actual.get(key):
            diffs.append({"what": key, "recorded": recorded.get(key), "now": actual.get(key)})
    rec, now = versions(recorded), versions(actual)
    for name in sorted((rec.keys() | now.keys()) - set(ignore)):
        if rec.get(name) != now.get(name):
            diffs.append({"what": "distribution", "name": name, "recorded": rec.get(name),
                          "now": now.get(name)})
    return diffs


def describe(diff: dict) -> str:
    if diff["what"] != "distribution":
        return f"{diff['what']} {diff['recorded']} -> {diff['now']}"
    if diff["now"] is None:
        return f"{diff['name']} {diff['recorded']} is missing"
    if diff["recorded"] is None:
        return f"{diff['name']} {diff['now']} was not in the recorded environment"
    return f"{diff['name']} {diff['recorded']} -> {diff['now']}"
