"""Populations and exposures for the rollout and MW401-MW404 tests, built through the real
ledger API (no fakes).

The canary population: 20,000 users with sequential integer ids. Organisations were
provisioned seats in blocks of 100 ids and their admins — the heaviest users — took the
first seats of each block (``id % 100 < 8``). A hash-free ``id % 100 < 5`` canary
therefore holds admins only; a salted assignment of the same users does not.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from modelward.ids import uuid7
from modelward.ledger import experiments as ledger_experiments
from modelward.ledger.schema import fingerprints
from modelward.rollout.assignment import Experiment

from ..guards.builders import DAY, HOUR, MIN, NOW, T0

__all__ = ["DAY", "HOUR", "MIN", "NOW", "T0"]
N = 20_000
SIGNUP0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def canary_population(n: int = N, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(1, n + 1):
        admin = i % 100 < 8
        rows.append({"subject": str(i),
                     "sessions_30d": int(rng.poisson(40 if admin else 12)),
                     "spend_90d": round(float(rng.gamma(2.0, 60.0 if admin else 20.0)), 2),
                     "signup_at": SIGNUP0 + i * 30 * MIN})
    return rows


def write_population(path: Path, rows: list[dict]) -> Path:
    from modelward.timefmt import iso

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["subject", "sessions_30d", "spend_90d", "signup_at"])
        for r in rows:
            w.writerow([r["subject"], r["sessions_30d"], r["spend_90d"], iso(r["signup_at"])])
    return path


def canary_arm(subject: str) -> str:
    return "treatment" if int(subject) % 100 < 5 else "control"


def create(store, name: str, salt: str, arms="control=95,treatment=5", balance=None) -> Experiment:
    exp = Experiment(name, salt, arms)
    with store.write() as conn:
        ledger_experiments.create(conn, name, salt, list(exp.arms), balance=balance, at=T0)
    return exp


def expose(store, name: str, pairs, *, start: int = T0, step: int = 1_000_000,
           **fields) -> int:
    """Record one exposure per (subject, arm), ``step`` apart from ``start``."""
    rows = [ledger_experiments.normalize_exposure(
        {"experiment": name, "subject": s, "arm": a, "at": start + i * step,
         **{k: (v(i, s, a) if callable(v) else v) for k, v in fields.items()}})
        for i, (s, a) in enumerate(pairs)]
    for i in range(0, len(rows), 5000):
        ledger_experiments.append_exposures(store, rows[i:i + 5000])
    return len(rows)


def fingerprint(store, digest: str, at: int, epoch: int, alias: str = "embed/search") -> None:
    """A fingerprint row as the fingerprint probe writes it (only what regimes read matters)."""
    with store.write() as conn:
        conn.execute(fingerprints.insert().values(
            id=uuid7(), embedder_alias=alias, embedder_digest=digest, at=at,
            probes_digest="sha256:" + "a" * 64, vectors_digest="sha256:" + "b" * 64,
            repeats=3, dims=8, noise_floor=0.001, epoch=epoch,
            verdict="baseline" if epoch == 1 else "changed"))


def count_exposures(store) -> int:
    from modelward.ledger.schema import exposures

    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(exposures)).scalar()
