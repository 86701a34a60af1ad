"""A real git repository with a small deterministic numpy training script, for the closure
tests (capture, reproduce, MW204)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelward.registry.closure.capture import CaptureSpec, capture

# Committed version: SCALE = 1.0. The uncommitted edit makes it 0.5, and the training
# imports an untracked helper module, so a rebuild is only identical when the patch
# (tracked edit + untracked file) was applied.
TRAIN = """\
import json, os, sys
import numpy as np
from helper import center
SCALE = 1.0
data, params_file, out = sys.argv[1:4]
params = json.load(open(params_file))
x = center(np.loadtxt(data, delimiter=","))
rng = np.random.default_rng(int(os.environ["MODELWARD_SEED"]))
w = rng.normal(size=x.shape[1]) * SCALE
for step in range(params["steps"]):
    w -= params["lr"] * x.T @ (x @ w - 1.0) / len(x)
w[0] += len(os.environ.get("MW_TEST_MODE", ""))
os.makedirs(os.path.dirname(out), exist_ok=True)
np.save(out, w)
print("trained", params["steps"], "steps; first weight", round(float(w[0]), 6))
"""
HELPER = "def center(x):\n    return x - x.mean(axis=0)\n"
DATA = "1,2,3\n4,5,6\n7,8,10\n2,1,0\n"
PARAMS = '{"steps": 25, "lr": 0.01}\n'


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(root: Path) -> Path:
    """A repository with one commit and uncommitted work: an edited tracked file, a deleted
    tracked file, an untracked module, an ignored cache, and untracked data and params."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "trainer@example.com")
    git(repo, "config", "user.name", "Trainer")
    (repo / "train.py").write_text(TRAIN)
    (repo / "requirements.txt").write_text("numpy\n")
    (repo / "obsolete.txt").write_text("to be deleted\n")
    (repo / ".gitignore").write_text("ignored/\nout/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "training script")
    (repo / "train.py").write_text(TRAIN.replace("SCALE = 1.0", "SCALE = 0.5"))
    (repo / "obsolete.txt").unlink()
    (repo / "helper.py").write_text(HELPER)
    (repo / "ignored").mkdir()
    (repo / "ignored" / "cache.bin").write_bytes(b"\x00cache")
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text(DATA)
    (repo / "params.json").write_text(PARAMS)
    return repo


def train_spec(repo: Path, **kw) -> CaptureSpec:
    values = dict(name="toy", command=[sys.executable, "train.py", "data/train.csv",
                                       "params.json", "out/weights.npy"],
                  output=Path("out/weights.npy"), inputs=("data/train.csv",),
                  params=Path("params.json"), seeds=(7,), env=("MW_TEST_MODE",), cwd=repo)
    values.update(kw)
    return CaptureSpec(**values)


def trained(store, root: Path, **kw):
    """Capture the toy training in a fresh repository under ``root``; returns the result."""
    repo = make_repo(root)
    return capture(store, train_spec(repo, **kw))
