"""What differs between a recorded training output and its rebuild: bytes and files, or
eval scores within a tolerance (``closure reproduce --eval``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ... import digest as dg
from ...errors import ModelwardError, ValidationError
from ...ledger import artifacts as ledger_artifacts
from ...ledger.engine import Store

_CHUNK = 1 << 20


@dataclass(frozen=True)
class EvalCompare:
    """``--eval EVALSET --runner R --prompt P [--scorer S]… --tolerance T``."""

    evalset: str
    runner: str
    prompt: str
    scorers: tuple[str, ...] = ()
    tolerance: float = 0.0
    limit: int | None = None


def _first_difference(a: Path, b: Path) -> int | None:
    offset = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                n = min(len(ca), len(cb))
                return offset + next((i for i in range(n) if ca[i] != cb[i]), n)
            if not ca:
                return None
            offset += len(ca)


def output_differences(store: Store, recorded: dict, new: Path, new_digest: str,
                       entries: list[dg.ManifestEntry] | None) -> list[dict]:
    """The output digest difference, then (directory) each file added, removed or changed,
    or (file) the first differing byte when the recorded payload is still stored."""
    now_bytes = sum(e.size for e in entries) if entries is not None else new.stat().st_size
    out = [{"what": "output", "recorded": recorded["digest"], "now": new_digest,
            "recorded_bytes": recorded.get("bytes"), "now_bytes": now_bytes,
            "detail": f"output digest {recorded['digest']} -> {new_digest}"}]
    blobs = store.blobs
    if recorded.get("is_directory") != (entries is not None):
        out[0]["detail"] += (" (recorded a directory, got a file)" if entries is None
                             else " (recorded a file, got a directory)")
        return out
    if entries is None:
        if blobs.verify(recorded["digest"]) == "present":
            at = _first_difference(blobs.local_path(recorded["digest"]), new)
            out[0]["first_difference"] = at
            out[0]["detail"] += f"; first differing byte at offset {at:,}"
        return out
    try:
        old = dict(dg.parse_manifest(blobs.get(recorded["digest"])))
    except ModelwardError:
        out[0]["detail"] += "; the recorded manifest is not stored, so files cannot be compared"
        return out
    now = {e.path: e.digest for e in entries}
    for path in sorted(old.keys() | now.keys()):
        if old.get(path) == now.get(path):
            continue
        change = ("added" if path not in old else "removed" if path not in now else "changed")
        out.append({"what": "file", "path": path, "change": change, "recorded": old.get(path),
                    "now": now.get(path), "detail": f"{change}: {path}"})
    return out


def _metrics(summary: dict) -> dict[str, float | None]:
    out = {"pass_rate": summary.get("pass_rate")}
    for name, s in sorted((summary.get("scorers") or {}).items()):
        out[f"{name}.mean"] = s.get("mean")
    return out


def compare_evals(store: Store, spec: EvalCompare, kind: str, name: str, closure: str,
                  recorded_digest: str, new_output: Path) -> dict:
    """Score the recorded and the rebuilt artifact on the same eval set, prompt, runner and
    scorers (both runs recorded as eval runs); within tolerance when every metric (pass
    rate, each scorer's mean) differs by at most ``spec.tolerance``."""
    from ...evals.harness.run import EvalSpec, Harness

    if spec.tolerance < 0:
        raise ValidationError("must be 0 or more", field="--tolerance")
    rebuilt = ledger_artifacts.register_path(
        store, kind, new_output, name=name, version="reproduced",
        meta={"reproduces": closure, "reproduction_of": recorded_digest}).artifact.digest
    runs = {}
    for label, digest in (("recorded", recorded_digest), ("reproduced", rebuilt)):
        harness = Harness(store, EvalSpec(evalset=spec.evalset, prompt=spec.prompt,
                                          model=digest, runner=spec.runner,
                                          scorers=tuple(spec.scorers), limit=spec.limit))
        runs[label] = harness.run()
    a, b = (_metrics(runs[k].summary or {}) for k in ("recorded", "reproduced"))
    scores, differences = {}, []
    for metric in sorted(a.keys() | b.keys()):
        ra, rb = a.get(metric), b.get(metric)
        delta = None if ra is None or rb is None else rb - ra
        scores[metric] = {"recorded": ra, "reproduced": rb, "delta": delta}
        if delta is None or abs(delta) > spec.tolerance + 1e-12:
            differences.append({"what": "eval", "metric": metric, "recorded": ra,
                                "now": rb, "detail": f"eval {metric} {_fmt(ra)} -> "
                                f"{_fmt(rb)} (tolerance {spec.tolerance:g})"})
    for label, run in runs.items():
        if run.status != "completed":
            differences.append({"what": "eval", "metric": "status", "recorded": None,
                                "now": run.status, "detail": f"the eval of the {label} "
                                f"artifact {run.status}: {run.error}"})
    return {"evalset": runs["recorded"].evalset_digest, "tolerance": spec.tolerance,
            "runs": {k: r.id for k, r in runs.items()}, "reproduced_digest": rebuilt,
            "scores": scores, "within_tolerance": not differences,
            "differences": differences}


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4g}"
