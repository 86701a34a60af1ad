"""The ledger's tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create and
change them; a test checks the two never disagree.

Times are integer microseconds since the epoch (UTC); digests are ``sha256:<hex>`` strings;
JSON columns hold canonical JSON text (sorted keys) so the chain can hash them as stored.
"""

from __future__ import annotations

import math

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy import Float as _Float

from ..errors import ValidationError

metadata = MetaData()


class Float(TypeDecorator):
    """A double that round-trips on every backend, so a chained row hashes the same when
    written and when read back: NaN and ±inf are refused (SQLite stores NaN as NULL) and
    −0.0 is stored as 0.0 (SQLite turns −0.0 into 0.0 anyway; PostgreSQL keeps it)."""

    impl = _Float
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or isinstance(value, bool):
            return value
        value = float(value)
        if not math.isfinite(value):
            raise ValidationError(f"{value!r} is not a finite number",
                                  hint="the ledger stores finite numbers only")
        return value + 0.0  # -0.0 + 0.0 == +0.0

DIGEST = String(71)

artifacts = Table(
    "artifacts",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", String(100)),
    Column("owner", String(320)),
    Column("created_at", BigInteger, nullable=False),
    # where the payload lives: "blob" (our store), "vendor" (hosted), "none" (--no-store)
    Column("payload", String(8), nullable=False),
    Column("is_directory", Boolean, nullable=False, default=False),
    Column("size", BigInteger),
    Column("hosted_id", String(300)),
    Column("retires_at", BigInteger),
    Column("source_path", Text),
    Column("payload_deleted_at", BigInteger),
    Column("meta", Text),
    # the API token that wrote the row (migration 0009; NULL from the CLI and older rows)
    Column("token_id", String(36)),
)
Index("ix_artifacts_kind", artifacts.c.kind)
Index("ix_artifacts_name", artifacts.c.name)

artifact_parents = Table(
    "artifact_parents",
    metadata,
    Column("child", DIGEST, primary_key=True),
    Column("parent", DIGEST, primary_key=True),
    Column("relation", String(32), nullable=False, default="parent"),
)
Index("ix_artifact_parents_parent", artifact_parents.c.parent)

alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alias", String(200), nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("previous_digest", DIGEST),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(320)),
    Column("reason", Text),
    # "create", "move", "rollback" (back to a digest it held before), "promote", "delete"
    # (the alias was deleted; digest: what it pointed at)
    Column("kind", String(16), nullable=False),
    Column("evidence", Text),
    # the API token that wrote the row (migration 0009; NULL from the CLI and older rows)
    Column("token_id", String(36)),
)
Index("ix_alias_events_alias_at", alias_events.c.alias, alias_events.c.at, alias_events.c.id)
Index("ix_alias_events_digest", alias_events.c.digest)

decisions = Table(
    "decisions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("alias", String(200)),
    Column("model_digest", DIGEST),
    Column("prompt_digest", DIGEST),
    Column("embedder_digest", DIGEST),
    Column("reranker_digest", DIGEST),
    Column("config_digest", DIGEST),
    Column("vendor_model_id", String(300)),
    Column("vendor_fingerprint", String(300)),
    Column("subject", String(300)),
    Column("input_digest", DIGEST),
    Column("output_digest", DIGEST),
    Column("segments", Text),
    Column("gate_threshold", Float),
    Column("gate_candidates", Integer),
    Column("gate_passed", Integer),
    Column("process", String(300)),
    Column("extra", Text),
    Column("recorded_at", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False),
    Column("pos", Integer, nullable=False),
)
Index("ix_decisions_at", decisions.c.at)
Index("ix_decisions_block_pos", decisions.c.block, decisions.c.pos)
Index("ix_decisions_subject", decisions.c.subject)
Index("ix_decisions_alias_at", decisions.c.alias, decisions.c.at)
Index("ix_decisions_model", decisions.c.model_digest)

# PostgreSQL partitions decisions by month of ``at`` (ledger/partitions.py, migration
# 0015_partitions): there the key of ``decisions`` is (id, at) and this table keeps a
# decision id unique across partitions. Unused on SQLite, whose decisions keep ``id`` as key.
decision_ids = Table(
    "decision_ids",
    metadata,
    Column("id", String(36), primary_key=True),
)

# Raw text lives apart from the chained record, so erasing it never breaks verification.
decision_payloads = Table(
    "decision_payloads",
    metadata,
    Column("decision_id", String(36), primary_key=True),
    Column("subject", String(300)),
    Column("input_text", Text),
    Column("output_text", Text),
    Column("erased_at", BigInteger),
)
Index("ix_decision_payloads_subject", decision_payloads.c.subject)

# Per-block rollups of the decisions (migration 0014_rollups; ledger/rollups.py): one row per
# distinct (alias, digests, process, vendor model id) in a decision block, written with the
# block and verified by recomputing it from the block's decisions; with the retrieval-gate
# sums MW502 reads (0018_rollup_gates).
decision_rollups = Table(
    "decision_rollups",
    metadata,
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("pos", Integer, primary_key=True, autoincrement=False),
    Column("alias", String(200)),
    Column("model_digest", DIGEST),
    Column("prompt_digest", DIGEST),
    Column("embedder_digest", DIGEST),
    Column("reranker_digest", DIGEST),
    Column("config_digest", DIGEST),
    Column("process", String(300)),
    Column("vendor_model_id", String(300)),
    Column("count", Integer, nullable=False),
    Column("first_at", BigInteger, nullable=False),
    Column("last_at", BigInteger, nullable=False),
    Column("min_id", String(36), nullable=False),
    # MW502's sums over the row's gated decisions, MW104's fingerprint range
    # (0018_rollup_gates; gated NULL: not kept)
    Column("gated", Integer),
    Column("gate_first_at", BigInteger),
    Column("gate_passed", BigInteger),
    Column("gate_candidates", BigInteger),
    Column("gate_xx", BigInteger),
    Column("gate_xn", BigInteger),
    Column("gate_nn", BigInteger),
    Column("cut_last_at", BigInteger),
    Column("fp_min", String(300)),  # smallest and largest vendor_fingerprint (MW104)
    Column("fp_max", String(300)),
)
Index("ix_decision_rollups_first_at", decision_rollups.c.first_at)

# The key of each subject's keyed text digests (ledger/subject_keys.py): never chained, never
# exported; erasing the subject deletes its row, so its chained digests can no longer be
# tested against guesses (crypto-shredding).
subject_keys = Table(
    "subject_keys",
    metadata,
    Column("subject", String(300), primary_key=True),
    Column("key", LargeBinary(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

chain_blocks = Table(
    "chain_blocks",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("root", String(64), nullable=False),
    Column("prev_root", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_at", BigInteger, nullable=False),
    Column("last_at", BigInteger, nullable=False),
    Column("sealed_at", BigInteger, nullable=False),
    # leaves of other chained records (chain_leaves) in the block (migration 0010_chain_all); a block
    # holds decisions or records, never both
    Column("records", Integer, nullable=False, server_default="0"),
)

# The leaf of each chained record (every write of a chained table other than decisions):
# its kind (the table), its key (canonical JSON of the primary key) and its leaf hash.
# The block's root covers the leaves; verify compares the newest leaf of each key with the
# row as it is now (see ledger/chain.py).
chain_leaves = Table(
    "chain_leaves",
    metadata,
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("pos", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("key", Text, nullable=False),
    Column("leaf", String(64), nullable=False),
)
Index("ix_chain_leaves_kind_key", chain_leaves.c.kind, chain_leaves.c.key)

# Signed checkpoints (migration 0013_checkpoints): each vouches that the chain up to
# ``block`` verified, so later verifications recompute only what is newer. ``body`` is the
# signed canonical JSON (block, root, counts, times, signer); ``signature`` signs it under a
# domain tag (see ledger/checkpoints.py). ``block`` repeats the body's, for ordering only.
chain_checkpoints = Table(
    "chain_checkpoints",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("block", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("signature", Text, nullable=False),
)
Index("ix_chain_checkpoints_block", chain_checkpoints.c.block)

holds = Table(
    "holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", DIGEST, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(320)),
    Column("at", BigInteger, nullable=False),
    # NULL: this row places a hold; N: this row releases hold N (migration 0005).
    Column("releases", Integer),
)
Index("ix_holds_digest", holds.c.digest)
Index("ix_holds_releases", holds.c.releases)

# --- evaluation integrity (migration 0002) ----------------------------------------------

eval_runs = Table(
    "eval_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),  # "task" | "safety"
    Column("evalset_digest", DIGEST, nullable=False),
    Column("prompt_alias", String(200)),
    Column("prompt_digest", DIGEST),
    Column("model_alias", String(200)),
    Column("model_digest", DIGEST),
    Column("runner", Text),
    Column("harness_version", String(32), nullable=False),
    Column("scorers", Text),
    Column("status", String(16), nullable=False),  # "running" | "completed" | "failed"
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("n_items", Integer, nullable=False, default=0),
    Column("summary", Text),
    Column("error", Text),
    Column("meta", Text),
)
Index("ix_eval_runs_pair", eval_runs.c.prompt_digest, eval_runs.c.model_digest)
Index("ix_eval_runs_started", eval_runs.c.started_at)
Index("ix_eval_runs_evalset", eval_runs.c.evalset_digest)

eval_results = Table(
    "eval_results",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("item_index", Integer, primary_key=True, autoincrement=False),
    Column("item_id", String(200), nullable=False),
    Column("rendered_digest", DIGEST),
    Column("rendered_text", Text),
    Column("output_text", Text),
    Column("output_digest", DIGEST),
    Column("scores", Text),
    Column("passed", Boolean),
    Column("latency_ms", Float),
    Column("error", Text),
    # what the endpoint reported serving for this call (OpenAI's model, system_fingerprint)
    Column("served_model_id", String(300)),
    Column("served_fingerprint", String(300)),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("decision_id", String(36), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("rating", Float),
    Column("intent", String(16), nullable=False),
    Column("surface", String(16), nullable=False),
    Column("author_kind", String(16), nullable=False),
    Column("author", String(320)),
    Column("comment", Text),
    Column("correction", Text),
    Column("meta", Text),
)
Index("ix_feedback_decision", feedback.c.decision_id)
Index("ix_feedback_at", feedback.c.at)

# Lineage from a curated dataset artifact to the feedback events it was built from.
dataset_feedback = Table(
    "dataset_feedback",
    metadata,
    Column("dataset_digest", DIGEST, primary_key=True),
    Column("feedback_id", String(36), primary_key=True),
)
Index("ix_dataset_feedback_feedback", dataset_feedback.c.feedback_id)

# --- model lifecycle (migration 0003) ------------------------------------------------------

people = Table(
    "people",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("name", String(200)),
    Column("status", String(8), nullable=False),  # "active" | "left"
    Column("team", String(200)),
    Column("updated_at", BigInteger, nullable=False),
)

# Owners and reviewers of record per alias (the current roster; changes are re-set whole).
alias_roles = Table(
    "alias_roles",
    metadata,
    Column("alias", String(200), primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("role", String(16), primary_key=True),  # "owner" | "reviewer"
    Column("assigned_at", BigInteger, nullable=False),
)

# Someone opened an eval run's evidence (CLI `eval show --as`, the dashboard).
eval_opens = Table(
    "eval_opens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("email", String(320), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("via", String(16), nullable=False),
    # the API token that wrote the row (migration 0009; NULL from the CLI and older rows)
    Column("token_id", String(36)),
)
Index("ix_eval_opens_run", eval_opens.c.run_id, eval_opens.c.email)

evalset_deprecations = Table(
    "evalset_deprecations",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(320)),
    Column("reason", Text),
)

promotion_requests = Table(
    "promotion_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("alias", String(200), nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("requester", String(320), nullable=False),
    Column("requested_at", BigInteger, nullable=False),
    Column("evidence_run_id", String(36)),
    Column("status", String(16), nullable=False),  # pending | approved | overridden | withdrawn
    Column("reason", Text),
    # the API token that wrote the row (migration 0009; NULL from the CLI and older rows)
    Column("token_id", String(36)),
)
Index("ix_promotion_requests_alias", promotion_requests.c.alias)

# Every approval attempt, granted or refused, with the gates it failed.
promotion_reviews = Table(
    "promotion_reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(36), nullable=False),
    Column("approver", String(320), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),  # approved | refused | overridden
    Column("failed_gates", Text),
    Column("override_reason", Text),
    Column("alias_event_id", Integer),
    # the eval run the gates judged (the request's, or the default evidence at that moment)
    Column("evidence_run_id", String(36)),
    # the API token that wrote the row (migration 0009; NULL from the CLI and older rows)
    Column("token_id", String(36)),
)
Index("ix_promotion_reviews_request", promotion_reviews.c.request_id)

# Training closures: the canonical JSON record lives in the blob store under its digest.
closures = Table(
    "closures",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    # NULL when the command failed or left no output (nothing was registered)
    Column("output_digest", DIGEST),
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("exit_code", Integer, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("base_digest", DIGEST),
    # canonical JSON lists copied out of the record so MW204 needs no blob read: the
    # artifacts a rebuild restores (inputs, base), the record's own part blobs (diff,
    # params, lock files) and what the capture could not record
    Column("inputs", Text),
    Column("blobs", Text),
    Column("gaps", Text),
)
Index("ix_closures_output", closures.c.output_digest)

# --- server (migration 0006) ---------------------------------------------------------------

# API tokens: only a SHA-256 of the secret is kept; the secret is shown once at creation.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # reader | writer | approver | admin
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("email", String(320)),
)

# --- dashboard (migration 0007) ------------------------------------------------------------

# One-time log-in codes (`modelward login-url`): a SHA-256 of the code, a short life, and
# used_at set by the one exchange that succeeds; the exchange creates a session token.
login_codes = Table(
    "login_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("email", String(320)),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger),
)


# Experiments, exposures, fingerprints and threshold policies, the findings' tables (guard
# runs, their findings and lifecycle, alert deliveries and acknowledgements) and the records
# of decision blocks that left the database (retired, archived) live in modules of their
# own, on the same metadata.
from .schema_findings import (  # noqa: E402, F401
    alert_deliveries,
    check_findings,
    check_runs,
    finding_acks,
    findings,
)
from .schema_history import archived_blocks, archives, retired_blocks  # noqa: E402, F401
from .schema_rollout import experiments, exposures, fingerprints, threshold_policies  # noqa: E402, F401
