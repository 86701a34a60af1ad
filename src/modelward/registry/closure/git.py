"""The code half of a training closure: the git commit, and the uncommitted state as one
binary patch (``git diff HEAD --binary`` plus every untracked, non-ignored file as a new
file), and the way back: clone, check out, apply.

Nothing here writes to the user's repository: untracked files are diffed with
``git diff --no-index`` against ``/dev/null`` rather than added to an index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ModelwardError

# Untracked files larger than this are not put in the patch: a checkpoint or a dataset left
# in the working tree belongs in the blob store as an --input, not in a diff.
MAX_UNTRACKED = 16 * 1024 * 1024
# Fixed formatting, whatever the user's git config says (noprefix, colours, external diff).
_DIFF = ["--binary", "--no-color", "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/"]
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def git(*args: str, cwd: Path, check: bool = True, ok=(0,)) -> subprocess.CompletedProcess:
    """Run git; ModelwardError (with git's own message) when it fails."""
    if shutil.which("git") is None:
        raise ModelwardError("git is not installed")
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True,
                          env={**os.environ, **_GIT_ENV})
    if check and proc.returncode not in ok:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ModelwardError(f"git {args[0]} failed in {cwd}: " + (detail[-1] if detail else
                                                              f"exit {proc.returncode}"))
    return proc


def _text(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode("utf-8", "replace").strip()


@dataclass
class CodeState:
    """What the capture recorded about the code, and the patch bytes (stored apart)."""

    root: Path | None = None
    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    patch: bytes = b""
    untracked: list[str] = field(default_factory=list)  # in the patch
    excluded: list[str] = field(default_factory=list)  # inputs/output/params, restored apart
    skipped: list[dict] = field(default_factory=list)  # too large: a gap
    gaps: list[str] = field(default_factory=list)


def repo_root(cwd: Path) -> Path | None:
    """The top of the git working tree holding ``cwd``, or None."""
    try:
        proc = git("rev-parse", "--show-toplevel", cwd=cwd, check=False)
    except ModelwardError:
        return None
    return Path(_text(proc)).resolve() if proc.returncode == 0 and _text(proc) else None


def capture(cwd: Path, exclude: set[str]) -> CodeState:
    """The commit and uncommitted patch of the repository holding ``cwd``. ``exclude``
    names repository-relative paths (files or directories) left out of the patch."""
    state = CodeState()
    if shutil.which("git") is None:
        state.gaps.append("code: git is not installed, so no commit or diff was recorded")
        return state
    root = repo_root(cwd)
    if root is None:
        state.gaps.append(f"code: {cwd} is not inside a git repository")
        return state
    state.root = root
    head = git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=root, check=False)
    if head.returncode != 0:
        state.gaps.append(f"code: the repository {root} has no commit yet")
        return state
    state.commit = _text(head)
    branch = _text(git("rev-parse", "--abbrev-ref", "HEAD", cwd=root, check=False))
    state.branch = None if branch in ("", "HEAD") else branch
    state.remote = _text(git("config", "--get", "remote.origin.url", cwd=root,
                             check=False)) or None
    specs = [f":(exclude,top,literal){p}" for p in sorted(exclude)]
    parts = [git("diff", "HEAD", *_DIFF, "--", ".", *specs, cwd=root).stdout]
    listed = git("ls-files", "--others", "--exclude-standard", "-z", cwd=root).stdout
    for rel in sorted(p for p in listed.decode("utf-8", "surrogateescape").split("\0") if p):
        if any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in exclude):
            state.excluded.append(rel)
            continue
        if rel.endswith("/"):  # a nested repository: git lists it, never its files
            state.skipped.append({"path": rel, "bytes": None})
            state.gaps.append(f"code: {rel} is a nested git repository and was not captured")
            continue
        path = root / rel
        size = path.lstat().st_size
        if size > MAX_UNTRACKED:
            state.skipped.append({"path": rel, "bytes": size})
            state.gaps.append(f"code: untracked file {rel} ({size:,} bytes) is larger than "
                              f"{MAX_UNTRACKED:,} bytes and was not captured; commit it or "
                              "pass it as --input")
            continue
        parts.append(git("diff", "--no-index", *_DIFF, "--", "/dev/null", rel, cwd=root,
                         ok=(0, 1)).stdout)
        state.untracked.append(rel)
    state.patch = b"".join(parts)
    return state


def checkout(source: str, commit: str, dest: Path, *, remote: str | None = None) -> str:
    """Clone ``source`` (the capture's repository) into ``dest`` and check out ``commit``;
    falls back to ``remote`` when the local repository is gone or lost the commit. Returns
    where the code came from."""
    tried = []
    for origin in [s for s in (source, remote) if s]:
        if dest.exists():
            shutil.rmtree(dest)
        clone = git("clone", "--quiet", "--no-checkout", origin, str(dest), cwd=dest.parent,
                    check=False)
        if clone.returncode == 0 and git("checkout", "--quiet", "--detach", commit,
                                         cwd=dest, check=False).returncode == 0:
            return origin
        tried.append(origin)
    raise ModelwardError(f"commit {commit} could not be checked out from "
                   + " or ".join(tried), hint="the repository the capture ran in (or its "
                   "origin remote) must still hold the commit")


def apply(dest: Path, patch_file: Path) -> None:
    """Apply the captured patch in a fresh checkout."""
    if patch_file.stat().st_size == 0:
        return
    git("apply", "--binary", "--whitespace=nowarn", str(patch_file), cwd=dest)
