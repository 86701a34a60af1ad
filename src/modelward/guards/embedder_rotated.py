"""An embedder's vectors changed and nobody registered a change.

What it checks
--------------
Every ``modelward fingerprint run`` whose verdict is ``changed`` (the sentinel probes
moved beyond the noise floor measured from the repeats, times the margin; see
docs/fingerprints.md) is set against the run of the same embedder alias before it. The
change is explained when, between the two runs (after the earlier, up to the later), the
alias moved, an alias event pointed at or away from either run's embedder digest, or an
artifact was registered that is the new digest itself, names either digest as a parent,
or is an embedder of the same name (a new version). Otherwise it fires: one finding per
unexplained changed run, with the magnitude, the threshold, the median per-probe cosine,
the similarity-matrix correlation (each with enough decimals to show its distance from 1:
0.999982, not 1.000) and the substrate epoch it opened. Only runs taken in
the check window are judged.

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
      embed/search's fingerprint changed at 2026-03-08T06:00:00Z (magnitude 0.41, threshold
      3.0e-04; median per-probe cosine 0.590, matrix correlation 0.973) with no alias move
      or embedder registration since the run of 2026-03-01T06:00:00Z; epoch 1 -> 2

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
guard. The verdict's margin is fixed when the run is taken.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..ledger import fingerprints as ledger_fp
from ..ledger import registry_events as ledger_registry_events
from ..retrieval.fingerprints import near_one
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
                  + f", matrix correlation {near_one(cmp.get('matrix_correlation', 0))}")
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
