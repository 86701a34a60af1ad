"""The findings' tables (SQLAlchemy Core, on :data:`.schema.metadata`): guard runs and the
findings each showed, every finding's lifecycle, the alerts sent about them and who
acknowledged them. Import them from :mod:`.schema`, which re-exports them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .schema import Float, metadata

# --- guard runs (migration 0012) -----------------------------------------------------------

# Derived facts, not chained: each row is what running the guards over the chained records
# said at one time, and running them again recomputes it. What they record is the findings'
# history: which run first showed a finding, which still shows it, which no longer does.
check_runs = Table(
    "check_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source", String(16), nullable=False),  # check | dashboard
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("now", BigInteger, nullable=False),  # the time the guards judged at
    Column("since", BigInteger),  # the window's start; NULL = all history
    Column("guards", Text, nullable=False),  # JSON: the codes that ran
    Column("counts", Text),  # JSON: findings per severity, suppressed, failing
    Column("seconds", Float),
    Column("error", Text),
)
Index("ix_check_runs_status_started", check_runs.c.status, check_runs.c.started_at)

# The findings of one run, as that run saw them; ``key`` is the finding's fingerprint.
check_findings = Table(
    "check_findings",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("code", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("subject", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("fix", Text),
    Column("evidence", Text, nullable=False),  # canonical JSON
    Column("decisions", BigInteger),  # decisions affected, when the guard counts them
    Column("aliases", Integer),  # aliases the finding names
    Column("first_seen", BigInteger),  # the earliest/latest evidence time the guard gives
    Column("last_seen", BigInteger),
)
Index("ix_check_findings_key", check_findings.c.key)

# One row per finding ever seen: the lifecycle. Opened by the first run that showed it,
# last seen by the latest, resolved by the first run of its guard after it that did not.
findings = Table(
    "findings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("code", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("subject", Text, nullable=False),
    Column("opened_run", String(36), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("last_run", String(36), nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("runs", Integer, nullable=False),  # runs that showed it since it opened
    Column("resolved_run", String(36)),
    Column("resolved_at", BigInteger),
)
Index("ix_findings_code_resolved", findings.c.code, findings.c.resolved_at)

# --- alert deliveries (migration 0016) ------------------------------------------------------

# The outbox of notifications: one row per (channel, finding, transition, run), written when a
# guard run opens or resolves a finding, then delivered (and retried with backoff) from here.
# Operational state, not chained: the findings they announce are derived facts already.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("channel", String(100), nullable=False),
    Column("finding_key", String(64), nullable=False),
    Column("transition", String(16), nullable=False),  # opened | resolved
    Column("run_id", String(36), nullable=False),
    Column("code", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger),
    Column("last_error", Text),
    Column("payload", Text, nullable=False),  # the message as built when the run ended
    UniqueConstraint("channel", "finding_key", "transition", "run_id",
                     name="uq_alert_deliveries_once"),
)
Index("ix_alert_deliveries_status_next", alert_deliveries.c.status,
      alert_deliveries.c.next_attempt_at)

# --- finding acknowledgements (migration 0017) ----------------------------------------------

# Who acknowledged (or snoozed) which finding, why and until when; chained, so who silenced
# what is tamper-evident. An ack covers the finding's current opening only; revoking sets
# ``revoked_at``/``revoked_by`` (the row is never deleted).
finding_acks = Table(
    "finding_acks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("finding_key", String(64), nullable=False),
    Column("code", String(16), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("until", BigInteger),  # NULL: until the finding resolves
    Column("revoked_at", BigInteger),
    Column("revoked_by", String(320)),
)
Index("ix_finding_acks_key", finding_acks.c.finding_key, finding_acks.c.created_at)
