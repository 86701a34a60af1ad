"""The fingerprint workflow behind ``modelward fingerprint run|compare|history``.

The first run of an embedder alias is its baseline (epoch 1). Every later run is judged
against the runs of the current epoch so far (its baseline runs, the most recent
``fingerprints.MAX_RUNS``; :func:`fingerprints.judge`); a ``changed`` verdict opens epoch + 1
with the new run as its first baseline run, so experiments can split exposures by substrate epoch (MW404) and
MW501 can ask whether anybody registered the change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..endpoints import RunnerError
from ..errors import ModelwardError, ValidationError
from ..ids import uuid7
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger import fingerprints as ledger_fp
from ..ledger.engine import Store
from ..ledger.fingerprints import Fingerprint
from ..timefmt import now_us
from . import fingerprints as fp
from .probes import Probes

MAX_REPEATS = 20


@dataclass
class RunResult:
    run: Fingerprint
    baseline: Fingerprint | None
    comparison: fp.Comparison | None
    probes: Probes

    def to_dict(self) -> dict:
        return {"run": self.run.to_dict(),
                "baseline": self.baseline.to_dict() if self.baseline else None,
                "comparison": self.comparison.to_dict() if self.comparison else None,
                "probes": {"source": self.probes.source, "count": len(self.probes),
                           "digest": self.probes.digest}}


def _vectors(store: Store, run: Fingerprint) -> np.ndarray:
    return fp.from_npy(store.blobs.get(run.vectors_digest))  # re-hashed on read


def _judge(store: Store, pool: list[Fingerprint], new_vectors: np.ndarray,
           new_probes: str, probe_ids: list[str]) -> fp.Comparison:
    for base in pool:
        if base.probes_digest != new_probes:
            raise ValidationError(
                f"the baseline run {base.id} of {base.embedder_alias} was taken on other "
                f"probes ({base.probes_digest}); runs are comparable only on the same probes",
                field="--probes", hint="run with the probes of the baseline")
    return fp.judge([_vectors(store, b) for b in pool], new_vectors, probe_ids=probe_ids)


def embed_probes(runner, probes: Probes, embedder, repeats: int) -> tuple[np.ndarray, str | None]:
    """(repeats, probes, dims) vectors and the vendor-reported model id, if any."""
    runs, reported = [], set()
    for _ in range(repeats):
        try:
            got = runner.embed(probes.texts, embedder)
        except RunnerError as exc:
            raise ModelwardError(str(exc), hint="check the --runner and that it embeds "
                                 "a list of texts") from None
        runs.append(got.vectors)
        if got.vendor_model_id:
            reported.add(got.vendor_model_id)
    if len({len(r[0]) for r in runs}) > 1:
        raise ModelwardError(f"{runner.spec} returned vectors of different lengths across "
                             "repeats")
    # compared at the precision they are stored in, so a rerun matches its stored baseline
    vectors = np.asarray(runs, dtype=np.float32).astype(np.float64)
    return vectors, ",".join(sorted(reported)) or None


def run(store: Store, alias: str, runner, probes: Probes, *, repeats: int = 3,
        at: int | None = None) -> RunResult:
    """Fingerprint the embedder ``alias`` points at now, store it and compare it."""
    if not 2 <= repeats <= MAX_REPEATS:
        raise ValidationError(f"{repeats} repeats; the noise floor needs 2 to {MAX_REPEATS}",
                              field="--repeats")
    when = now_us() if at is None else at
    with store.read() as conn:
        res = ledger_aliases.resolve_at(conn, alias, when)
        embedder = ledger_artifacts.get(conn, res.digest)
        last = ledger_fp.latest(conn, alias)
        pool = ledger_fp.epoch_runs(conn, alias, last.epoch)[-fp.MAX_RUNS:] if last else []
        base = ledger_fp.epoch_baseline(conn, alias, last.epoch) if last else None
    if embedder.kind != "embedder":
        raise ValidationError(f"{alias} points at a {embedder.kind}, not an embedder",
                              field="EMBEDDER_ALIAS")
    if last is not None and when < last.at:
        raise ValidationError(f"the last run of {alias} is later than this one", field="--at")
    vectors, vendor_id = embed_probes(runner, probes, embedder, repeats)
    noise = fp.noise_floor(vectors)
    comparison = None
    epoch, verdict = 1, "baseline"
    if base is not None:
        comparison = _judge(store, pool, vectors, probes.digest, probes.ids)
        verdict = comparison.verdict
        epoch = last.epoch + (verdict == "changed")
    blob = store.blobs.put_bytes(fp.to_npy(vectors))
    row = Fingerprint(
        id=uuid7(), embedder_alias=alias, embedder_digest=res.digest, at=when,
        probes_digest=probes.digest, vectors_digest=blob, repeats=repeats,
        dims=int(vectors.shape[2]), noise_floor=noise, vendor_model_id=vendor_id, epoch=epoch,
        baseline_id=base.id if base else None, verdict=verdict,
        magnitude=comparison.magnitude if comparison else None,
        summary={"probes": len(probes), "probes_source": probes.source,
                 "probe_ids": probes.ids,
                 **({"comparison": comparison.to_dict(),
                     "baseline_runs": [b.id for b in pool]} if comparison else {})})
    with store.write() as conn:
        ledger_fp.insert(conn, row)
    return RunResult(row, base, comparison, probes)


def compare_latest(store: Store, alias: str) -> RunResult:
    """The latest run of ``alias`` judged again against the baseline runs it was judged
    against (of its epoch, or of the previous epoch for a run that opened a new one),
    recomputed from the stored vectors (verified on read)."""
    with store.read() as conn:
        last = ledger_fp.latest(conn, alias)
        if last is None:
            raise ModelwardError(f"{alias} has no fingerprint runs",
                                 hint=f"run `modelward fingerprint run {alias} --runner …`")
        base = ledger_fp.get(conn, last.baseline_id) if last.baseline_id else None
        pool = [ledger_fp.get(conn, i) for i in last.summary.get("baseline_runs")
                or ([base.id] if base else [])]
    ids = list(last.summary.get("probe_ids") or [])
    probes = Probes(ids, [], last.probes_digest, last.summary.get("probes_source", "?"))
    if base is None:
        return RunResult(last, None, None, probes)
    vectors = _vectors(store, last)
    if len(ids) != vectors.shape[1]:
        ids = [f"#{i + 1}" for i in range(vectors.shape[1])]
    comparison = _judge(store, pool, vectors, last.probes_digest, ids)
    return RunResult(last, base, comparison, probes)
