"""Capture a training closure: run the training command and record everything needed to
rebuild what it produced.

:func:`capture` checks its inputs before the (possibly long) run, records the code
(commit and uncommitted patch), the environment, chosen environment variables, hardware,
inputs, base, params and seeds, runs the command streaming its output, then digests and
registers the trained artifact with lineage to its inputs, base and the closure.
See docs/closures.md for the record's fields and what "complete" means.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ... import digest as dg
from ..._version import __version__
from ...errors import ModelwardError, UnknownArtifactError, ValidationError
from ...ledger import artifacts as ledger_artifacts
from ...ledger import closures as ledger_closures
from ...ledger.artifacts import Artifact
from ...ledger.closures import ClosureRow
from ...ledger.engine import Store
from ...timefmt import now_us
from ..payloads import check_payload
from ..training import TRAINED_KINDS
from ..verification import cache_for
from . import env as closure_env
from . import git as closure_git
from .run import TAIL_LINES, run_streamed

MAX_PARAMS_INLINE = 64 * 1024
RECORD_VERSION = 1
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class CaptureSpec:
    """What ``modelward closure capture`` was asked."""

    name: str
    command: list[str]
    output: Path
    kind: str = "model"
    inputs: tuple[str, ...] = ()  # digests or paths
    base: str | None = None
    params: Path | None = None
    seeds: tuple[int, ...] = ()
    env: tuple[str, ...] = ()
    cwd: Path | None = None


@dataclass
class CaptureResult:
    closure: ClosureRow
    record: dict
    artifact: Artifact | None  # None when the command failed or left no output
    artifact_created: bool = False
    registered_inputs: list[Artifact] = field(default_factory=list)


def place(path: Path, root: Path | None) -> dict:
    """Where a path is, as a reproduction can find it again: inside the repository
    (relative, posix) or absolute."""
    p = Path(os.path.abspath(path)).resolve()
    if root is not None and p.is_relative_to(root):
        return {"root": "repo", "path": p.relative_to(root).as_posix() or "."}
    return {"root": "absolute", "path": str(p)}


def _retained(store: Store, art: Artifact, option: str) -> None:
    check = check_payload(store, art, verify=True, cache=cache_for(store, now_us()),
                          now=now_us())
    if check.status == "present" or (check.status == "vendor" and not check.retired):
        return
    raise ValidationError(
        f"{art.kind} {art.name} ({art.digest}) is registered but its payload is not retained "
        f"({check.describe()})", field=option,
        hint=f"store it again: modelward register {art.kind} PATH --name {art.name}")


def _check(spec: CaptureSpec, cwd: Path) -> None:
    if not spec.name or not spec.name.strip():
        raise ValidationError("a closure needs a name", field="--name")
    if spec.kind not in TRAINED_KINDS:
        raise ValidationError(f"a trained artifact is a model or an adapter, not {spec.kind!r}",
                              field="--kind")
    if not spec.command:
        raise ValidationError("give the training command after --", field="command",
                              hint="modelward closure capture --name N --output PATH -- "
                                   "python train.py")
    for name in spec.env:
        if not _ENV_NAME.fullmatch(name):
            raise ValidationError(f"not an environment variable name: {name!r}", field="--env")
    output = cwd / spec.output
    if output.exists() or output.is_symlink():
        raise ValidationError(f"{spec.output} already exists", field="--output",
                              hint="move it away first: the output must be written by this "
                                   "command, not left over from an earlier run")
    if spec.params is not None and not (cwd / spec.params).is_file():
        raise ValidationError(f"{spec.params} is not a file", field="--params")


def _inputs(store: Store, spec: CaptureSpec, cwd: Path) -> list[tuple[Artifact, Path | None,
                                                                        str]]:
    """(artifact, path, how given) of each --input: digests must be registered and
    retained; paths are registered as datasets with their payload stored. Every input is
    checked before any is registered."""
    given_digests: dict[str, Artifact] = {}
    for given in spec.inputs:
        if given.startswith("sha256:"):
            dg.check_digest(given, "--input")
            with store.read() as conn:
                art = ledger_artifacts.find(conn, given)
            if art is None:
                raise UnknownArtifactError(f"--input {given} is not a registered artifact",
                                           hint="give the file's PATH to register it")
            _retained(store, art, "--input")
            given_digests[given] = art
        elif not (cwd / given).exists():
            raise ValidationError(f"{given} does not exist", field="--input")
    found = []
    for given in spec.inputs:
        if given in given_digests:
            art = given_digests[given]
            found.append((art, Path(art.source_path) if art.source_path else None, "digest"))
            continue
        path = cwd / given
        art = ledger_artifacts.register_path(store, "dataset", path,
                                             name=Path(os.path.abspath(path)).name).artifact
        _retained(store, art, "--input")
        found.append((art, path, "path"))
    return found


def _base(store: Store, base: str | None) -> Artifact | None:
    if base is None:
        return None
    dg.check_digest(base, "--base")
    with store.read() as conn:
        art = ledger_artifacts.find(conn, base)
    if art is None:
        raise UnknownArtifactError(f"--base {base} is not a registered artifact",
                                   hint="register the base model first")
    _retained(store, art, "--base")
    return art


def _code_exclusions(paths: list[Path], root: Path | None) -> set[str]:
    out = set()
    for p in paths:
        where = place(p, root)
        if where["root"] == "repo" and where["path"] != ".":
            out.add(where["path"])
    return out


def capture(store: Store, spec: CaptureSpec, *,
            sink: Callable[[bytes], None] | None = None) -> CaptureResult:
    """Run the training command and record its closure (see the module docstring)."""
    cwd = Path(os.path.abspath(spec.cwd or Path.cwd()))
    _check(spec, cwd)
    base = _base(store, spec.base)
    inputs = _inputs(store, spec, cwd)
    output_path = cwd / spec.output
    params_path = cwd / spec.params if spec.params is not None else None
    gaps: list[str] = []
    for art, path, how in inputs:
        # a digest input is read from where it was registered: it must still be that data
        if how == "digest" and path is not None and path.is_file() \
                and not dg.is_canonicalised(art.kind, path) and dg.of_file(path) != art.digest:
            gaps.append(f"input {art.name}: {path} no longer holds {art.digest}, so what the "
                        "command reads there is not the recorded input")

    root = closure_git.repo_root(cwd)
    excluded = [output_path] + [p for _a, p, _how in inputs if p is not None]
    base_path = (Path(base.source_path) if base is not None and base.payload == "blob"
                 and base.source_path else None)
    excluded += [p for p in (params_path, base_path) if p is not None]
    code = closure_git.capture(cwd, _code_exclusions(excluded, root))
    gaps += code.gaps
    root = code.root
    blobs: list[str] = []
    diff_digest = None
    if code.patch:
        diff_digest = store.blobs.put_bytes(code.patch)
        blobs.append(diff_digest)

    python = closure_env.interpreter_for(spec.command)
    try:
        environment = closure_env.snapshot(python)
    except (ModelwardError, ValueError) as exc:  # a gap, not a reason to not train
        environment = {"executable": python, "error": str(exc)}
        gaps.append(f"environment: {exc}")
    environment["interpreter_is_command"] = closure_env.is_python(spec.command[0])
    locks = []
    for lock in closure_env.lock_files([d for d in (root, cwd) if d is not None]):
        d = store.blobs.put_file(lock)
        blobs.append(d)
        locks.append({**place(lock, root), "digest": d, "bytes": lock.stat().st_size})
    environment["lock_files"] = locks

    params = None
    if params_path is not None:
        data = params_path.read_bytes()
        p_digest = store.blobs.put_bytes(data)
        blobs.append(p_digest)
        try:
            text = data.decode("utf-8") if len(data) <= MAX_PARAMS_INLINE else None
        except UnicodeDecodeError:
            text = None
        params = {**place(params_path, root), "digest": p_digest, "bytes": len(data),
                  "content": text}

    child_env = dict(os.environ)
    if spec.seeds:
        child_env["MODELWARD_SEED"] = str(spec.seeds[0])
        child_env["MODELWARD_SEEDS"] = ",".join(str(s) for s in spec.seeds)
    if params_path is not None:
        child_env["MODELWARD_PARAMS"] = str(params_path)
    started = now_us()
    exit_code, tail, interrupted = run_streamed(spec.command, cwd, child_env, sink=sink)
    finished = now_us()
    if interrupted:
        gaps.append("command: interrupted")
    if exit_code != 0:
        gaps.append(f"command: exited with code {exit_code}")

    output = None
    if exit_code == 0:
        if not output_path.exists():
            gaps.append(f"output: {spec.output} does not exist after the command")
        elif output_path.is_dir() and not dg.walk_directory(output_path):
            gaps.append(f"output: {spec.output} holds no files after the command")
        else:
            output = _digest_output(output_path, root, spec.kind)

    record = {
        "version": RECORD_VERSION, "modelward": __version__, "name": spec.name.strip(),
        "kind": spec.kind, "command": list(spec.command), "cwd": place(cwd, root),
        "started_at": started, "finished_at": finished, "exit_code": exit_code,
        "output_tail": tail, "output_tail_lines": TAIL_LINES,
        "code": {"repository": str(root) if root else None, "commit": code.commit,
                 "branch": code.branch, "remote": code.remote, "diff": diff_digest,
                 "diff_bytes": len(code.patch), "untracked": code.untracked,
                 "excluded": code.excluded, "skipped": code.skipped},
        "environment": environment,
        "env": {name: os.environ.get(name) for name in spec.env},
        "hardware": closure_env.hardware(),
        "inputs": [{"digest": a.digest, "kind": a.kind, "name": a.name, "given": how,
                    **(place(p, root) if p is not None else {"root": None, "path": None})}
                   for a, p, how in inputs],
        "base": None if base is None else {
            "digest": base.digest, "kind": base.kind, "name": base.name,
            "hosted_id": base.hosted_id,
            **(place(base_path, root) if base_path else {"root": None, "path": None})},
        "params": params, "seeds": list(spec.seeds), "output": output,
        "complete": not gaps, "gaps": gaps,
    }
    closure_digest = ledger_closures.store_record(store, record)
    artifact, created = None, False
    if output is not None:
        parents = [(a.digest, "data") for a, _p, _h in inputs]
        if base is not None:
            parents.append((base.digest, "base"))
        parents = list(dict.fromkeys(parents))  # an input given twice is one parent
        reg = ledger_artifacts.register_path(
            store, spec.kind, output_path, name=spec.name.strip(), parents=parents,
            meta={"closure": closure_digest, "trained": True})
        if reg.artifact.digest != output["digest"]:
            raise ValidationError(f"{spec.output} changed while it was being registered",
                                  field="--output")
        artifact, created = reg.artifact, reg.created
    row = ClosureRow(
        digest=closure_digest, output_digest=output["digest"] if output else None,
        name=record["name"], created_at=finished, exit_code=exit_code,
        complete=record["complete"], base_digest=base.digest if base else None,
        inputs=list(dict.fromkeys([a.digest for a, _p, _h in inputs]
                                  + ([base.digest] if base else []))),
        blobs=list(dict.fromkeys(blobs)), gaps=gaps)
    with store.write() as conn:
        ledger_closures.insert(conn, row)
    return CaptureResult(row, record, artifact, created,
                         [a for a, _p, how in inputs if how == "path"])


def _digest_output(path: Path, root: Path | None, kind: str) -> dict:
    if path.is_dir():
        entries = dg.walk_directory(path)
        digest = dg.of_bytes(dg.manifest_bytes(entries))
        size, is_dir = sum(e.size for e in entries), True
    else:
        digest, size, is_dir = dg.of_file(path), path.stat().st_size, False
    return {**place(path, root), "digest": digest, "kind": kind, "is_directory": is_dir,
            "bytes": size}
