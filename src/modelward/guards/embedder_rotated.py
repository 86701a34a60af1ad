"""An embedder's vectors changed and nobody registered a change.

What it checks
--------------
Every ``modelward fingerprint run`` whose verdict is ``changed`` (the sentinel probes
moved beyond the noise between the earlier runs of the same substrate epoch, at a 1%
false-alarm rate; see docs/fingerprints.md) is set against the run of the same embedder alias before it. The
change is explained when, between the two runs (after the earlier, up to the later), the
alias moved, an alias event pointed at or away from either run's embedder digest, or an
artifact was registered that is the new digest itself, names either digest as a parent,
or is an embedder of the same name (a new version). Otherwise it fires: one finding per
unexplained changed run, with the magnitude, the threshold, the median per-probe cosine,
the similarity-matrix correlation (each with enough decimals to show its distance from 1:
0.999982, not 1.000), what the threshold rests on with the smallest change it can detect,
and the substrate epoch it opened. Only runs taken in the check window are judged.

**How it decides.** The verdict is :func:`modelward.retrieval.fingerprints.judge`, the one
``fingerprint run`` records and ``fingerprint compare`` recomputes: the new run against
the earlier runs of its epoch (up to 20). From the pairwise magnitudes between those runs
each run's own departure is estimated (it carries both the run-to-run variation and the
repeats' noise); the new run's departure is judged against a log-normal upper prediction
bound from them (computed at 0.2%, measured at or below the stated 1% false-alarm rate;
never above the gross bound below).
The threshold is the smallest change the run can detect, printed as a median per-probe
cosine. With fewer than 3 earlier runs in the epoch the noise between runs cannot be
measured: the verdict is ``changed`` only for a gross change (median per-probe cosine or
matrix correlation below 0.9) or a change of dimensions, and ``inconclusive`` otherwise,
which never fires.

**Known limits.** Measured by ``bench/calib/mw501.py`` (40 probes, 3 repeats, 5 baseline
runs): false alarms 0.1-0.6% (upper 95% bounds up to 1.3%) across the null scenarios
(noise varying between runs, steady noisy API); an update to per-probe cosine 0.98 is caught in 100% of cases behind a steadily
noisy API but only about a third of the time when the noise itself varies 2-3x between
runs (the bound has to cover that spread). The first three runs of an epoch are its
baseline: a subtle change among them widens the spread instead of being caught; a slow
drift, run by run, is absorbed into the baseline.

Why it matters
--------------
A hosted embedding model can change its vectors under an unchanged name. Everything built
on the old vectors silently degrades: the index no longer matches new queries, similarity
thresholds mean something else, and an A/B test running across the change measures the
vendor's update instead of the treatment.

Example
-------
``embed/search`` points at the hosted ``openai:text-embedding-3-small`` throughout; the
weekly fingerprint run of 2026-03-08 found the probes moved::

    MW501 embedder-rotated  embed/search
      embed/search's fingerprint changed at 2026-03-08T06:00:00Z (magnitude 0.051,
      threshold 7.3e-03; median per-probe cosine 0.977, matrix correlation 0.947;
      threshold at a 1% false-alarm rate from the noise between 5 baseline runs; smallest
      detectable change: median per-probe cosine 0.9927) with no alias move or embedder
      registration since the run of 2026-03-01T06:00:00Z; epoch 1 -> 2

How to fix
----------
Find out what changed (the vendor's release notes, ``modelward fingerprint compare``).
Register the new embedder as its own artifact (``modelward register --hosted`` with the
dated id, or the new weights) and move the alias to it, re-embed the index, recalibrate
the thresholds that depend on it (``modelward threshold recalibrate``), and split
experiments at the change (MW404). The registration or alias move acknowledges the change.

Configuration
-------------
No options of its own; ``severity`` overrides the default severity (warning), as for every
guard. The verdict, its threshold and false-alarm rate (1%) are fixed when the run is
taken (docs/fingerprints.md).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..ledger import fingerprints as ledger_fp
from ..ledger import registry_events as ledger_registry_events
from ..retrieval.fingerprints import basis, near_one
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW501"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = ()
FIX = ("register the new embedder and move the alias to it, re-embed the index, "
       "recalibrate dependent thresholds and split experiments at the change")


def _explained(view, alias: str, digests: set[str], start: int, end: int) -> bool:
    """Whether a registry event in (start, end] acknowledges a change of ``alias``."""
    names = [a.name for a in view.artifacts(digests).values()]
    return ledger_registry_events.acknowledged(view, alias, digests, start, end,
                                               embedder_names=names)


def check(view, config) -> Iterator[Finding]:
    runs = ledger_fp.all_runs(view)
    for prev, run in zip(runs, runs[1:], strict=False):
        if (run.embedder_alias != prev.embedder_alias or run.verdict != "changed"
                or run.at > view.now or (view.since is not None and run.at < view.since)):
            continue
        digests = {prev.embedder_digest, run.embedder_digest}
        if _explained(view, run.embedder_alias, digests, prev.at, run.at):
            continue
        cmp = run.summary.get("comparison", {})
        median = cmp.get("median_cosine")
        detail = (f"magnitude {run.magnitude:.2g}, threshold {cmp.get('threshold', 0):.1e}; "
                  + ("dimensions differ" if median is None
                     else f"median per-probe cosine {near_one(median)}")
                  + f", matrix correlation {near_one(cmp.get('matrix_correlation', 0))}"
                  + f"; {basis(cmp)}")
        yield Finding(
            CODE, SEVERITY, run.embedder_alias,
            f"{run.embedder_alias}'s fingerprint changed at {iso(run.at)} ({detail}) with no "
            f"alias move or embedder registration since the run of {iso(prev.at)}; "
            f"epoch {prev.epoch} -> {run.epoch}",
            evidence={"alias": run.embedder_alias, "run_id": run.id, "at": iso(run.at),
                      "previous_run_id": prev.id, "previous_at": iso(prev.at),
                      "digest": run.embedder_digest, "previous_digest": prev.embedder_digest,
                      "magnitude": run.magnitude, "threshold": cmp.get("threshold"),
                      "median_cosine": median,
                      "matrix_correlation": cmp.get("matrix_correlation"),
                      "noise_floor": run.noise_floor, "epoch": run.epoch,
                      "vendor_model_id": run.vendor_model_id},
            fix=FIX, identity=("alias", "run_id"))
