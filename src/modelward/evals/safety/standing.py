"""Where a fine-tune stands on safety: compared against its base and passed, or not.

A **fine-tune** is what ``modelward.registry.training.fine_tune`` says: an ``adapter``, or
a model with a parent of relation ``base``; its base is that parent (an adapter registered
without one has no known base, and a comparison against any base counts). Only completed ``safety`` eval runs on exactly its digest
count, and of those only comparisons against its base; the latest decides. The same
function backs MW205, ``modelward safety status`` and the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...digest import is_digest
from ...errors import ValidationError
from ...ledger import aliases as ledger_aliases
from ...ledger import artifacts as ledger_artifacts
from ...ledger import evals as ledger_evals
from ...ledger.artifacts import Artifact
from ...ledger.evals import EvalRun
from ...registry.training import base_of, fine_tune
from ...timefmt import iso
from .summary import shortfalls

PROBLEMS = ("never-compared", "other-base", "regressed", "inconclusive")


@dataclass
class Standing:
    """``problem``: None (its latest comparison against its base passed),
    ``never-compared``, ``other-base`` (compared only against other models) or
    ``regressed`` (its latest comparison against its base did not pass) or
    ``inconclusive`` (it passed, but with looser tolerances than the defaults, on a suite
    under the minimum, with too many failed calls, or without recording them; see
    ``summary.shortfalls``). ``run`` is the comparison that decided (for other-base: the
    latest comparison of any base)."""

    digest: str
    base: str | None
    problem: str | None
    run: EvalRun | None = None
    compared_bases: list[str] = field(default_factory=list)
    shortfalls: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        run = self.run
        s = (run.summary or {}) if run else {}
        return {"digest": self.digest, "base": self.base, "problem": self.problem,
                "ok": self.problem is None, "compared_bases": self.compared_bases,
                "shortfalls": self.shortfalls,
                "run": None if run is None else {
                    "id": run.id, "finished_at": iso(run.finished_at),
                    "base": (run.meta or {}).get("base"), "passed": s.get("passed"),
                    "failures": s.get("failures", []),
                    "suite": (s.get("suite") or {}).get("digest", run.evalset_digest)}}


def standings(conn, arts: list[Artifact], at: int) -> dict[str, Standing]:
    """Digest -> Standing of each artifact at ``at``; ``conn`` is a connection or a guard
    view (only SELECTs are run)."""
    runs = ledger_evals.runs_on_models(conn, {a.digest for a in arts}, kind="safety",
                                       until=at)
    return {a.digest: _judge(a, runs.get(a.digest, [])) for a in arts}


def standing(conn, art: Artifact, at: int) -> Standing:
    return standings(conn, [art], at)[art.digest]


def _judge(art: Artifact, runs: list[EvalRun]) -> Standing:
    base = base_of(art)
    bases = sorted({b for r in runs if (b := (r.meta or {}).get("base"))})
    if not runs:
        return Standing(art.digest, base, "never-compared")
    against = [r for r in runs if base is None or (r.meta or {}).get("base") == base]
    if not against:
        return Standing(art.digest, base, "other-base", runs[0], bases)
    latest = against[0]
    passed = isinstance(latest.summary, dict) and latest.summary.get("passed") is True
    if not passed:
        return Standing(art.digest, base, "regressed", latest, bases)
    missing = shortfalls(latest.summary)
    return Standing(art.digest, base, "inconclusive" if missing else None, latest, bases,
                    missing)


def select(conn, refs: list[str], at: int) -> tuple[list[Artifact], dict[str, list[str]]]:
    """(artifacts, digest -> live aliases): the models or adapters ``refs`` name (digests
    or aliases at ``at``), or every live fine-tune when there are none."""
    live = ledger_aliases.live_aliases(conn, at)
    if not refs:
        found = ledger_artifacts.find_many(conn, live)
        return [found[d] for d in sorted(found) if fine_tune(found[d])], live
    arts: dict[str, Artifact] = {}
    for ref in refs:
        digest = ref if is_digest(ref) else ledger_aliases.resolve_at(conn, ref, at).digest
        art = ledger_artifacts.get(conn, digest)
        if art.kind not in ("model", "adapter"):
            raise ValidationError(f"{ref} is a {art.kind} artifact, not a model or adapter",
                                  field="REFS")
        arts[digest] = art
    return list(arts.values()), live
