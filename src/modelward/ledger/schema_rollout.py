"""Rollout and retrieval tables (SQLAlchemy Core, on :data:`.schema.metadata`): experiments
and their exposures, embedder fingerprint runs and threshold policies. Import them from
:mod:`.schema`, which re-exports them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from .schema import DIGEST, Float, metadata

# --- rollout and retrieval (migration 0004) ------------------------------------------------

experiments = Table(
    "experiments",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("salt", String(200), nullable=False),
    Column("arms", Text, nullable=False),  # canonical JSON [{"name":…, "weight":…}, …]
    Column("created_at", BigInteger, nullable=False),
    Column("balance", Text),  # JSON: candidates, criterion, chosen salt, achieved balance
    Column("meta", Text),
)

exposures = Table(
    "exposures",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("experiment", String(200), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("arm", String(100), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("model_digest", DIGEST),
    Column("prompt_digest", DIGEST),
    Column("embedder_digest", DIGEST),
    Column("reranker_digest", DIGEST),
    Column("vendor_model_id", String(300)),
    Column("fingerprint_epoch", Integer),
    Column("metric", Float),
    Column("extra", Text),
)
Index("ix_exposures_experiment_at", exposures.c.experiment, exposures.c.at)
Index("ix_exposures_subject", exposures.c.subject)

fingerprints = Table(
    "fingerprints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("embedder_alias", String(200), nullable=False),
    Column("embedder_digest", DIGEST, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("probes_digest", DIGEST, nullable=False),
    Column("vectors_digest", DIGEST, nullable=False),  # blob: the probe vectors
    Column("repeats", Integer, nullable=False),
    Column("dims", Integer, nullable=False),
    Column("noise_floor", Float, nullable=False),
    Column("vendor_model_id", String(300)),
    Column("epoch", Integer, nullable=False),
    Column("baseline_id", String(36)),
    Column("verdict", String(16)),  # baseline | same | inconclusive | changed
    Column("magnitude", Float),
    Column("summary", Text),
)
Index("ix_fingerprints_alias_at", fingerprints.c.embedder_alias, fingerprints.c.at)

threshold_policies = Table(
    "threshold_policies",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("mode", String(16), nullable=False),  # "pass_rate" | "quantile"
    Column("target", Float, nullable=False),
    Column("cut", Float, nullable=False),
    Column("previous_cut", Float),
    Column("reference_digest", DIGEST, nullable=False),
    Column("substrate", Text, nullable=False),  # JSON: embedder/reranker/model digests
    Column("actor", String(320)),
    Column("reason", Text),
)
