"""Rebuild a trained artifact from its closure and say whether the rebuild matches.

:func:`reproduce` lays out ``WORKDIR/src`` (a clone of the capture's repository at the
recorded commit with the uncommitted patch applied), ``WORKDIR/venv`` (the environment,
see :mod:`.closure_venv`), restores inputs, base and params from the blob store to their
recorded places, re-runs the recorded command with the recorded seeds and variables, and
compares the new output with the recorded digest, bitwise, or with ``--eval`` by eval
scores within a tolerance. The verdict is ``identical``, ``equivalent`` or ``diverged``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from ... import digest as dg
from ...errors import NotFoundError, ValidationError
from ...ledger import artifacts as ledger_artifacts
from ...ledger import closures as ledger_closures
from ...ledger.engine import Store
from ...timefmt import now_us
from ..training import TRAINED_KINDS
from . import env as closure_env
from . import git as closure_git
from . import venv as closure_venv
from .compare import EvalCompare, compare_evals, output_differences
from .run import run_streamed

VERDICTS = ("identical", "equivalent", "diverged")


@dataclass
class Reproduction:
    closure: str
    name: str
    workdir: str
    recorded_digest: str
    new_digest: str | None = None
    verdict: str = "diverged"
    exit_code: int | None = None
    differences: list[dict] = field(default_factory=list)
    code: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    restored: list[dict] = field(default_factory=list)
    eval: dict | None = None
    output_tail: str = ""
    started_at: int = 0
    finished_at: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _target(where: dict, src: Path) -> Path | None:
    if where.get("root") == "repo":
        return src / where["path"]
    return Path(where["path"]) if where.get("path") else None


def _blob_bytes(store: Store, digest: str, what: str) -> bytes:
    """A blob's bytes as stored, even when they no longer match (the caller reports it)."""
    try:
        return b"".join(store.blobs.iter_chunks(digest))
    except NotFoundError:
        raise NotFoundError(f"{what} ({digest}) is no longer in the blob store",
                            hint="the closure cannot be rebuilt without it; restore it with "
                                 "`modelward register`") from None


def _restore(store: Store, digest: str, dest: Path, what: str) -> list[dict]:
    """Write an artifact's stored payload to ``dest``; returns its corrupt blobs."""
    with store.read() as conn:
        art = ledger_artifacts.find(conn, digest)
    if art is not None and art.payload == "vendor":
        return []
    if art is not None and art.payload != "blob":
        raise ValidationError(f"{what} {digest} was registered without a payload",
                              field="digest")
    if dest.is_file() and dg.of_file(dest) == digest:
        return []
    bad = []
    files = [("", digest)]
    if art is not None and art.is_directory:
        data = _blob_bytes(store, digest, what)
        if dg.of_bytes(data) != digest:
            raise ValidationError(f"the manifest of {what} {digest} is corrupt", field="digest")
        files = dg.parse_manifest(data)
    for rel, file_digest in files:
        data = _blob_bytes(store, file_digest, what)
        target = dest / rel if rel else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if dg.of_bytes(data) != file_digest:
            bad.append({"what": "input", "digest": digest, "file": rel or None,
                        "problem": "corrupt", "stored_digest": dg.of_bytes(data),
                        "detail": f"{what} {digest} was restored from a corrupt blob"
                                  + (f" ({rel})" if rel else "")})
    return bad


def _outside_ok(path: Path, digest: str | None, option: str) -> bool:
    """An absolute path outside the repository: never overwritten with other content."""
    if not path.exists():
        return True
    if digest and digest_of(path) == digest:
        return False  # already there, intact
    raise ValidationError(f"{path} exists outside the reproduction's workdir and holds other "
                          "content; it is not overwritten", field=option,
                          hint="move it away, then reproduce again")


def digest_of(path: Path) -> str:
    """The digest a file or directory would be registered under."""
    if path.is_dir():
        return dg.of_bytes(dg.manifest_bytes(dg.walk_directory(path)))
    return dg.of_file(path)


def _rewrite(args: list[str], root: str | None, src: Path) -> list[str]:
    """Point absolute paths into the capture's repository at the clone instead."""
    if not root:
        return list(args)
    pattern = re.compile(re.escape(root.rstrip("/")) + r"(?=/|$)")
    return [pattern.sub(lambda _m: str(src), a) for a in args]


def reproduce(store: Store, digest: str, workdir: Path, *, env_mode: str = "auto",
              pip_args: tuple[str, ...] = (), evaluate: EvalCompare | None = None,
              sink: Callable[[bytes], None] | None = None,
              progress: Callable[[str], None] = lambda _m: None) -> Reproduction:
    """Rebuild closure (or trained artifact) ``digest`` in ``workdir`` and compare."""
    if env_mode not in closure_venv.MODES:
        raise ValidationError(f"unknown environment mode {env_mode!r}; choose one of "
                              + ", ".join(closure_venv.MODES), field="--env")
    with store.read() as conn:
        row, _n = ledger_closures.resolve(conn, digest)
    record = ledger_closures.load_record(store, row.digest)
    if row.exit_code != 0 or not record.get("output"):
        raise ValidationError(f"closure {row.digest} recorded a failed run (exit "
                              f"{row.exit_code}); there is no output to reproduce",
                              field="digest")
    code = record["code"]
    if not code.get("commit") or not code.get("repository"):
        raise ValidationError(f"closure {row.digest} recorded no git commit, so its code "
                              "cannot be checked out", field="digest")
    workdir = Path(os.path.abspath(workdir))
    if workdir.exists() and any(workdir.iterdir()):
        raise ValidationError(f"{workdir} is not empty", field="--workdir",
                              hint="give a new or empty directory")
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "src"
    rep = Reproduction(row.digest, record["name"], str(workdir), record["output"]["digest"],
                       started_at=now_us())

    progress(f"checking out {code['commit'][:12]} from {code['repository']}")
    origin = closure_git.checkout(code["repository"], code["commit"], src,
                                  remote=code.get("remote"))
    rep.code = {"source": origin, "commit": code["commit"], "patch": code.get("diff"),
                "patch_bytes": code.get("diff_bytes", 0)}
    if code.get("diff"):
        patch = workdir / "closure.patch"
        patch.write_bytes(store.blobs.get(code["diff"]))
        closure_git.apply(src, patch)

    restore = [(i["digest"], i, f"input {i['name']}") for i in record["inputs"]]
    if record.get("base") and record["base"].get("path"):
        restore.append((record["base"]["digest"], record["base"], "base"))
    for d, where, what in restore:
        dest = _target(where, src)
        if dest is None:
            rep.restored.append({"digest": d, "path": None, "note": "no recorded path"})
            continue
        if where.get("root") != "repo" and not _outside_ok(dest, d, "--input"):
            rep.restored.append({"digest": d, "path": str(dest), "note": "already present"})
            continue
        rep.differences += _restore(store, d, dest, what)
        rep.restored.append({"digest": d, "path": str(dest)})
    params = record.get("params")
    params_path = _target(params, src) if params else None
    if params:
        if params["root"] == "repo" or _outside_ok(params_path, params["digest"], "--params"):
            params_path.parent.mkdir(parents=True, exist_ok=True)
            params_path.write_bytes(store.blobs.get(params["digest"]))
        rep.restored.append({"digest": params["digest"], "path": str(params_path)})

    out_where = record["output"]
    new_output = _target(out_where, src)
    if out_where["root"] != "repo":
        _outside_ok(new_output, None, "output")
    elif new_output.exists():
        shutil.rmtree(new_output) if new_output.is_dir() else new_output.unlink()

    environment = record.get("environment", {})
    env = closure_venv.build(environment, workdir / "venv", mode=env_mode, pip_args=pip_args,
                             log=workdir / "pip.log", progress=progress)
    rep.environment = {**env.to_dict(), "differences": closure_env.compare(
        environment, env.snapshot, ignore=closure_venv.NEVER_INSTALLED)}
    rep.differences += [{**d, "detail": "environment: " + closure_env.describe(d)}
                        for d in rep.environment["differences"]]

    command = _rewrite(record["command"], code["repository"], src)
    if environment.get("interpreter_is_command"):
        command[0] = env.python
    cwd = _target(record["cwd"], src)
    child = _child_env(record, env, params_path)
    progress("running " + " ".join(command))
    rep.exit_code, rep.output_tail, _ = run_streamed(command, cwd, child, sink=sink)
    (workdir / "output.log").write_text(rep.output_tail + "\n")
    _judge(store, rep, record, new_output, evaluate, progress)
    rep.finished_at = now_us()
    (workdir / "reproduce.json").write_bytes(orjson.dumps(rep.to_dict(),
                                                          option=orjson.OPT_INDENT_2))
    return rep


def _child_env(record: dict, env: closure_venv.Environment, params: Path | None) -> dict:
    child = {k: v for k, v in os.environ.items()
             if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    for name, value in record.get("env", {}).items():
        if value is None:
            child.pop(name, None)
        else:
            child[name] = value
    if env.venv is not None:
        child["VIRTUAL_ENV"] = str(env.venv)
        child["PATH"] = str(Path(env.python).parent) + os.pathsep + child.get("PATH", "")
    seeds = record.get("seeds") or []
    if seeds:
        child["MODELWARD_SEED"] = str(seeds[0])
        child["MODELWARD_SEEDS"] = ",".join(str(s) for s in seeds)
    if params is not None:
        child["MODELWARD_PARAMS"] = str(params)
    return child


def _judge(store: Store, rep: Reproduction, record: dict, new_output: Path,
           evaluate: EvalCompare | None, progress: Callable[[str], None]) -> None:
    if rep.exit_code != 0:
        last = rep.output_tail.strip().splitlines()[-1:] or ["no output"]
        rep.differences.append({"what": "command", "exit_code": rep.exit_code,
                                "detail": f"the command exited with {rep.exit_code} "
                                          f"(recorded 0): {last[0]}"})
        return
    if not new_output.exists():
        rep.differences.append({"what": "output", "detail": f"{new_output} was not written"})
        return
    entries = dg.walk_directory(new_output) if new_output.is_dir() else None
    rep.new_digest = (dg.of_bytes(dg.manifest_bytes(entries)) if entries is not None
                      else dg.of_file(new_output))
    if rep.new_digest == rep.recorded_digest:
        rep.verdict = "identical"
        return
    rep.differences += output_differences(store, record["output"], new_output,
                                          rep.new_digest, entries)
    if evaluate is None:
        return
    kind = record.get("kind") if record.get("kind") in TRAINED_KINDS else "model"
    progress(f"scoring both outputs on {evaluate.evalset}")
    rep.eval = compare_evals(store, evaluate, kind, record["name"], rep.closure,
                             rep.recorded_digest, new_output)
    rep.differences += rep.eval["differences"]
    rep.verdict = "equivalent" if rep.eval["within_tolerance"] else "diverged"
