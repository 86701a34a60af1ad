"""``modelward threshold calibrate|recalibrate``: derive a policy's cut from reference scores.

The reference scores file is registered as a ``dataset`` artifact (its digest goes on the
policy), and the substrate the scores came from (``--embedder``/``--reranker``, an alias
or a digest) is resolved at calibration time: the policy records the digests it was
calibrated on, which MW502 compares with the digests decisions name later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..digest import is_digest
from ..errors import ValidationError
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger import thresholds as ledger_thresholds
from ..ledger.engine import Store
from ..ledger.thresholds import PolicyVersion
from ..timefmt import now_us
from . import thresholds as th

SUBSTRATE_KINDS = ("embedder", "reranker")


@dataclass
class Calibration:
    policy: PolicyVersion
    previous: PolicyVersion | None
    scores: int
    queries: int
    pass_rate: float  # of the reference scores at the new cut
    old_cut_pass_rate: float | None  # of the new reference scores at the replaced cut

    def to_dict(self) -> dict:
        return {"policy": self.policy.to_dict(),
                "previous": self.previous.to_dict() if self.previous else None,
                "reference": {"digest": self.policy.reference_digest, "scores": self.scores,
                              "queries": self.queries},
                "pass_rate": self.pass_rate, "old_cut_pass_rate": self.old_cut_pass_rate}


def resolve_substrate(conn, kind: str, ref: str, at: int) -> dict:
    """``{"digest": …, "ref": alias-or-None}`` for ``--embedder``/``--reranker``."""
    option = f"--{kind}"
    if is_digest(ref):
        art = ledger_artifacts.get(conn, ref)
        alias = None
    else:
        res = ledger_aliases.resolve_at(conn, ref, at)
        art = ledger_artifacts.get(conn, res.digest)
        alias = ref
    if art.kind != kind:
        article = "an" if kind[0] in "aeiou" else "a"
        raise ValidationError(f"{ref} is a {art.kind}, not {article} {kind}", field=option)
    return {"digest": art.digest, "ref": alias}


def _substrate(conn, given: dict[str, str | None], before: dict, at: int) -> dict:
    out = {}
    for kind in SUBSTRATE_KINDS:
        ref = given.get(kind)
        if ref is None and before.get(kind):
            ref = before[kind].get("ref") or before[kind]["digest"]  # an alias follows its moves
        if ref:
            out[kind] = resolve_substrate(conn, kind, ref, at)
    return out


def _calibrate(store: Store, name: str, scores_path: Path, *, mode: str | None,
               target: float | None, embedder: str | None, reranker: str | None,
               actor: str | None, reason: str | None, at: int | None,
               recalibrate: bool) -> Calibration:
    ledger_thresholds.check_name(name)
    ref = th.read_scores(scores_path)
    when = now_us() if at is None else at
    with store.read() as conn:
        versions = ledger_thresholds.history(conn, name)
        previous = versions[-1] if versions else None
        if recalibrate and previous is None:
            ledger_thresholds.latest(conn, name)  # raises NotFoundError with a hint
        if not recalibrate and previous is not None:
            raise ValidationError(f"policy {name!r} exists (version {previous.version}, cut "
                                  f"{previous.cut:.6g})", field="NAME",
                                  hint="use `modelward threshold recalibrate` to keep its pass "
                                       "rate on new scores")
        if previous is not None and when < previous.at:
            raise ValidationError("a recalibration cannot predate the version it replaces",
                                  field="--at")
        substrate = _substrate(conn, {"embedder": embedder, "reranker": reranker},
                               previous.substrate if previous else {}, when)
    if previous is not None:
        mode, target = previous.mode, previous.target
    target = th.check_target(mode, target)
    cut = th.cut_for(ref.scores, mode, target)
    reg = ledger_artifacts.register_path(store, "dataset", scores_path,
                                         name=f"threshold-reference/{name}")
    policy = PolicyVersion(
        name=name, version=(previous.version + 1) if previous else 1, at=when, mode=mode,
        target=target, cut=cut, previous_cut=previous.cut if previous else None,
        reference_digest=reg.artifact.digest, substrate=substrate, actor=actor, reason=reason)
    with store.write() as conn:
        ledger_thresholds.insert(conn, policy)
    return Calibration(policy, previous, len(ref.scores), ref.queries,
                       th.pass_rate(ref.scores, cut),
                       th.pass_rate(ref.scores, previous.cut) if previous else None)


def calibrate(store: Store, name: str, scores_path: Path, *, mode: str, target: float,
              embedder: str | None = None, reranker: str | None = None,
              actor: str | None = None, reason: str | None = None,
              at: int | None = None) -> Calibration:
    """Version 1 of a new policy."""
    if mode not in ledger_thresholds.MODES:
        raise ValidationError(f"unknown mode {mode!r}", field="mode")
    return _calibrate(store, name, Path(scores_path), mode=mode, target=target,
                      embedder=embedder, reranker=reranker, actor=actor, reason=reason, at=at,
                      recalibrate=False)


def recalibrate(store: Store, name: str, scores_path: Path, *, embedder: str | None = None,
                reranker: str | None = None, actor: str | None = None,
                reason: str | None = None, at: int | None = None) -> Calibration:
    """The next version: same mode and target on new reference scores; the substrate is
    re-resolved (aliases it was calibrated through follow their moves) unless given."""
    return _calibrate(store, name, Path(scores_path), mode=None, target=None,
                      embedder=embedder, reranker=reranker, actor=actor, reason=reason, at=at,
                      recalibrate=True)
