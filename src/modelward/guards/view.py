"""The read-only window guards see the ledger through.

A guard gets a :class:`View` and never the store itself: the view runs SELECTs inside one
read transaction (a consistent snapshot; the database is also told the transaction is
read-only), verifies payloads and the chain on the guard's behalf, and caches what
several guards ask for. Guards therefore do no I/O of their own and cannot write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from sqlalchemy.engine import Connection, Result
from sqlalchemy.sql import Select
from sqlalchemy.sql.selectable import CompoundSelect

from ..display import short_digest
from ..errors import ConfigError, ModelwardError
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger import chain as ledger_chain
from ..ledger import checkpoints as ledger_checkpoints
from ..ledger import heads
from ..ledger import retention as ledger_retention
from ..ledger.artifacts import Artifact
from ..ledger.engine import Store
from ..ledger.retention import References
from ..registry.payloads import PayloadCheck, check_payload
from ..registry.verification import VerificationCache
from ..settings import Settings
from ..timefmt import now_us


class _ReadOnlyCache(VerificationCache):
    """Trusts fresh entries; never writes, and never drops one it found stale."""

    def drop_payload(self, digest: str) -> None:
        return None

    def drop_block(self, number: int) -> None:
        return None


class View:
    """Read-only access to one ledger at one moment (``now``), for one run of the guards."""

    def __init__(self, store: Store, conn: Connection, settings: Settings, *,
                 now: int | None = None, since: int | None = None,
                 incremental=None) -> None:
        self._store = store
        self._conn = conn
        self.settings = settings
        self.now = now_us() if now is None else now
        self.since = since  # decisions before this are outside the window (None: all)
        self.dialect = store.dialect
        # counting guards read per-block rollups (ledger/rollups.py) unless told otherwise
        self.rollups = bool(settings.check_rollups)
        # a watch process's state (guards/incremental.py): the window's rollups kept in
        # memory, read by ledger.rollup_usage through this attribute, and the chain block
        # this process last verified
        self.incremental = incremental
        self.rollup_window = (incremental.window if incremental is not None and self.rollups
                              else None)
        # filled by the runner before the meta guards (MW001, MW002) run
        self.suppressions: list = []
        self.codes_run: set[str] = set()
        self._artifacts: dict[str, Artifact | None] = {}
        self._payload: dict[tuple[str, bool], PayloadCheck] = {}
        self._references: dict[int | None, dict[str, References]] = {}
        # read the verification cache, never write it: guards change nothing
        self._cache = _ReadOnlyCache(store.blobs.verified_dir, store.blobs.signature,
                                     settings.verify_cache_ttl or 0, self.now, write=False)
        self._bytes: dict[str, bytes | None] = {}
        self._chain: ledger_chain.VerifyReport | None = None
        self._events: list[ledger_aliases.AliasEvent] | None = None
        self._targets: dict[str, str] | None = None

    @classmethod
    @contextlib.contextmanager
    def open(cls, store: Store, settings: Settings, **kw) -> Iterator[View]:
        with store.read() as conn:
            if store.dialect == "postgresql":
                # one snapshot for every guard, and the server refuses any write
                conn.exec_driver_sql(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield cls(store, conn, settings, **kw)
                return
            conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                yield cls(store, conn, settings, **kw)
            finally:
                # the connection goes back to a pool (or is the shared in-memory one)
                conn.exec_driver_sql("PRAGMA query_only = OFF")

    # --- queries ----------------------------------------------------------------------
    def execute(self, statement: Select | CompoundSelect) -> Result:
        """Run a SELECT; anything else is refused. Guards build no SQL: they pass the view
        to ledger read functions (``ledger_usage.digest_usage(view, since=view.since)``),
        which run their SELECTs through here on the guards' snapshot."""
        if not isinstance(statement, (Select, CompoundSelect)):
            raise TypeError("guards may only run SELECT statements")
        return self._conn.execute(statement)

    # --- artifacts ----------------------------------------------------------------------
    def artifacts(self, digests: Iterable[str]) -> dict[str, Artifact]:
        """The registered artifacts among ``digests`` (unknown ones are left out)."""
        wanted = {d for d in digests if d}
        missing = [d for d in wanted if d not in self._artifacts]
        if missing:
            found = ledger_artifacts.find_many(self._conn, missing)
            for d in missing:
                self._artifacts[d] = found.get(d)
        return {d: a for d in wanted if (a := self._artifacts[d]) is not None}

    def label(self, digest: str | None) -> str:
        """``name@version (sha256:abc…)`` for a registered digest, the short digest otherwise."""
        if not digest:
            return "-"
        art = self.artifacts([digest]).get(digest)
        if art is None:
            return short_digest(digest)
        name = f"{art.name}@{art.version}" if art.version else art.name
        return f"{name} ({short_digest(digest)})"

    def references(self, since: int | None) -> dict[str, References]:
        """Digest -> decisions naming it at or after ``since`` and the latest of them: the
        same scan retention and gc keep payloads by."""
        if since not in self._references:
            self._references[since] = ledger_retention.decision_references(
                self, since=since, rollups=self.rollups)
        return self._references[since]

    def payload_check(self, art: Artifact, *, verify: bool = True) -> PayloadCheck:
        """The registry's payload check: ``verify`` re-hashes (a full verification that
        ``modelward audit`` or retention cached within ``verify_cache_ttl``, files unchanged,
        is trusted); without it only presence and size are checked."""
        key = (art.digest, verify)
        if key not in self._payload:
            self._payload[key] = check_payload(self._store, art, verify=verify,
                                               cache=self._cache, now=self.now)
        return self._payload[key]

    def payload(self, art: Artifact) -> bytes | None:
        """The verified bytes of a single-file artifact stored in our blob store (a policy,
        an eval set); None when it is not stored here, is a directory, missing or corrupt."""
        if art.digest not in self._bytes:
            data = None
            if art.payload == "blob" and not art.is_directory:
                try:
                    data = self._store.blobs.get(art.digest)  # re-hashes on read
                except ModelwardError:
                    data = None
            self._bytes[art.digest] = data
        return self._bytes[art.digest]

    # --- aliases and chain --------------------------------------------------------------
    def alias_events(self) -> list[ledger_aliases.AliasEvent]:
        """Every alias event, by alias then time."""
        if self._events is None:
            self._events = ledger_aliases.all_events(self._conn)
        return self._events

    def alias_targets(self) -> dict[str, str]:
        """Alias -> the digest it points at at ``now`` (``ledger.aliases.targets_at``)."""
        if self._targets is None:
            self._targets = ledger_aliases.targets_at(self._conn, self.now)
        return self._targets

    def live_aliases(self) -> dict[str, list[str]]:
        """Digest -> the aliases pointing at it at ``now``: the live artifacts."""
        return ledger_aliases.by_digest(self.alias_targets())

    def verify_chain(self) -> ledger_chain.VerifyReport:
        """The chain from the newest checkpoint the configured key vouches for (all history
        without a key): :func:`modelward.ledger.checkpoints.verify`."""
        if self._chain is None:
            point = self.incremental.verified if self.incremental is not None else None
            if point is not None:
                # a watch process verifies only the blocks after the one it verified last
                # (that block must still carry the root it had: a checkpoint's rule)
                self._chain = ledger_chain.verify(self._conn, since=point, apart=True)
                self._chain.checkpoint = {"block": point.block, "root": point.root,
                                          "watch": True}
                self._chain.notes.append(f"verified from block {point.block}, the last this "
                                         "watch process verified")
            else:
                self._chain = ledger_checkpoints.verify(self._conn,
                                                        heads.keys_from(self.settings),
                                                        apart=True)
            if self.incremental is not None and self._chain.ok:
                self.incremental.verified = ledger_checkpoints.Verified.of(self._chain)
        return self._chain

    # --- contamination scans (MW302) ----------------------------------------------------
    def _config_dir(self):
        path = self.settings.config_path
        return path.resolve().parent if path is not None else None

    def evalset_items(self, ref: str) -> list:
        """The items of an eval set named by ``sha256:`` digest (read from the blob store,
        verified) or by path (relative to modelward.toml's directory)."""
        from ..evals.contamination.corpus import load_items

        return load_items(ref, store=self._store, base=self._config_dir())[0]

    def pre_period(self, ref: str, *, subject_column: str = "subject"):
        """A pre-period population (MW402, MW403): a CSV/JSONL file relative to
        modelward.toml's directory, or the digest of a stored dataset (verified on read)."""
        from ..rollout.population import open_table

        cache = self.__dict__.setdefault("_pre_periods", {})
        if (ref, subject_column) not in cache:
            cache[ref, subject_column] = open_table(ref, store=self._store,
                                                    base=self._config_dir(),
                                                    subject_column=subject_column)
        return cache[ref, subject_column]

    def experiment_population(self, exp, config, code: str):
        """(table, PrePeriod) of the pre-period population ``exp`` is judged on, or None:
        ``rollout.population.pre_period_of`` with the guard's ``pre_period``,
        ``subject_column`` and ``covariates`` options (what ``modelward experiment check``
        and the dashboard read too). A configured file that cannot be read is a
        ConfigError naming ``check.CODE.pre_period``."""
        from ..rollout.population import pre_period_of

        src = pre_period_of(exp, pre_period=config.get("pre_period"),
                            subject_column=config.get("subject_column") or "subject",
                            covariates=config.get("covariates"))
        if src is None:
            return None
        try:
            table = self.pre_period(src.ref, subject_column=src.subject_column)
        except ModelwardError as exc:
            if src.configured:
                raise ConfigError(f"check.{code}.pre_period: "
                                  f"{getattr(exc, 'detail', exc.message)}") from None
            raise
        return table, src

    def documents(self, ref: str):
        """A contamination source, read lazily as the scan streams it: a file or directory
        (relative to modelward.toml's directory), an artifact digest, or an alias as it
        stood at ``now``."""
        from ..evals.contamination.corpus import open_source

        return open_source(ref, store=self._store, conn=self._conn, at=self.now,
                           base=self._config_dir())
