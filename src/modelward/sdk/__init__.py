"""What serving code imports: :func:`open`, :meth:`Ledger.resolve`, :meth:`Ledger.record`.

Light by design: importing it pulls in neither FastAPI nor Typer nor Rich.

>>> import modelward
>>> ledger = modelward.open()                        # settings from env / modelward.toml
>>> model = ledger.resolve("chat/v1")                # .digest, .since, … and .path()
>>> prompt = ledger.prompt("prompt/support@production")
>>> text = prompt.render(question=q)                 # the template whose digest is recorded
>>> ledger.record(uses=[model, prompt], subject="u-123", input_text=text, output_text=a)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ..errors import NotFoundError, ValidationError
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger import experiments as ledger_experiments
from ..ledger import feedback as ledger_feedback
from ..ledger import thresholds as ledger_thresholds
from ..ledger.aliases import Resolution
from ..ledger.decision_fields import KIND_FIELD
from ..ledger.engine import Store
from ..retrieval.thresholds import ThresholdPolicy
from ..rollout.assignment import Experiment, assign, assign_many, subject_text
from ..settings import Settings
from ..timefmt import parse_time
from .loading import LoadedPrompt, RenderedPrompt, Resolved, load_prompt
from .recorder import Recorder, replay_orphaned_spools


class Ledger:
    """An open ledger: resolve aliases, record decisions, and reach the store."""

    def __init__(self, settings: Settings, *, create: bool = True) -> None:
        self.settings = settings
        self.store = Store(settings)
        self.store.ensure_schema(create=create)
        replay_orphaned_spools(self.store, settings.spool_path)
        self._recorder: Recorder | None = None
        self._recorder_lock = threading.Lock()
        self._experiments: dict[str, Experiment] = {}

    # --- aliases ----------------------------------------------------------------------
    def resolve(self, alias: str, at=None) -> Resolved:
        """What ``alias`` points to now (or at ``at``): read fresh from the ledger every call.

        The result names the digest and loads exactly that payload, verified:
        ``.path()`` (a local file or directory, cached by digest), ``.read_bytes()``,
        ``.read_text()`` (see docs/loading.md)."""
        when = None if at is None else parse_time(at)
        with self.store.read() as conn:
            return Resolved.of(ledger_aliases.resolve_at(conn, alias, when), self)

    def prompt(self, alias: str, at=None) -> LoadedPrompt:
        """Resolve a prompt alias and load its template (verified) in one step;
        ``.render(**variables)`` returns the text with the digest attached."""
        return load_prompt(self, self.resolve(alias, at))

    # --- decisions --------------------------------------------------------------------
    @property
    def recorder(self) -> Recorder:
        recorder = self._recorder
        if recorder is None:
            # serving threads record at once: without the lock each made its own Recorder,
            # and flush()/close() reached only the last one
            with self._recorder_lock:
                if self._recorder is None:
                    s = self.settings
                    self._recorder = Recorder(
                        self.store, mode=s.recorder_mode, flush_interval_us=s.flush_interval,
                        flush_records=s.flush_records, queue_limit=s.queue_limit,
                        spool_dir=s.spool_path, process=s.process_name)
                recorder = self._recorder
        return recorder

    def record(self, *, uses: Iterable = (), strict: bool = True, **fields) -> str:
        """Record one decision; returns its id (client-made UUIDv7 unless ``id=`` is given).

        ``uses`` takes what the output was produced with: :class:`Resolution` objects (or
        rendered prompts), alias names or ``sha256:`` digests of registered artifacts. Each
        fills the digest field of its artifact kind, and the first alias names the alias
        asked for. An unknown alias or digest raises (UnknownAliasError,
        UnknownArtifactError naming it); with ``strict=False`` the decision is recorded
        anyway, the problems listed in ``extra["uses_problems"]``. Any field of a decision
        may be passed by name (see docs/decisions.md)."""
        problems = []
        for use in uses:
            try:
                res = self.resolve_use(use)
            except (NotFoundError, ValidationError) as exc:
                if strict:
                    raise
                problems.append(f"{use}: {exc.message}")
                continue
            field = KIND_FIELD.get(res.artifact_kind)
            if field is None:
                message = (f"{res.alias} points at a" if res.alias else f"{res.digest} is a") \
                    + f" {res.artifact_kind}, which a decision does not name"
                if strict:
                    raise ValidationError(message, field="uses")
                problems.append(message)
                continue
            fields.setdefault(field, res.digest)
            if res.alias:
                fields.setdefault("alias", res.alias)
        if problems:
            extra = fields.get("extra")
            fields["extra"] = {**(extra if isinstance(extra, dict) else {}),
                               "uses_problems": problems}
        for name in ("input_text", "output_text"):
            value = fields.get(name)
            if isinstance(value, str) and type(value) is not str:  # e.g. a RenderedPrompt
                fields[name] = str.__str__(value)
        return self.recorder.record(fields)

    def resolve_use(self, use) -> Resolution:
        """One item of ``uses=`` as a Resolution: a Resolution (or anything carrying one, a
        rendered prompt), an alias name (resolved now) or the ``sha256:`` digest of a
        registered artifact (``alias`` empty). Unknown names and digests raise, naming them."""
        use = getattr(use, "resolution", use)  # a RenderedPrompt names its prompt
        if isinstance(use, Resolution):
            return use
        if not isinstance(use, str):
            raise ValidationError(f"expected a Resolution, an alias or a digest, got "
                                  f"{type(use).__name__}", field="uses")
        if not use.startswith("sha256:"):
            return self.resolve(use)
        with self.store.read() as conn:
            art = ledger_artifacts.get(conn, use)
        return Resolution("", art.digest, 0, 0, 0, "digest", art.kind)

    # --- experiments ------------------------------------------------------------------
    def experiment(self, name: str) -> Experiment:
        """The experiment ``name`` (salt and arms, read once: experiments never change)."""
        found = self._experiments.get(name)
        if found is None:
            with self.store.read() as conn:
                rec = ledger_experiments.get(conn, name)
            found = Experiment(rec.name, rec.salt, rec.arms, created_at=rec.created_at,
                               balance=rec.balance)
            self._experiments[name] = found
        return found

    def expose(self, experiment: Experiment | str, subject, arm: str | None = None, *,
               uses: Iterable[Resolution] = (), metric: float | None = None, at=None,
               id: str | None = None, **fields) -> str:  # noqa: A002
        """Record that ``subject`` was served ``arm`` of ``experiment`` (an
        :class:`Experiment` or its name); returns the exposure id (UUIDv7 unless given).

        ``arm`` defaults to ``experiment.assign(subject)``; one passed explicitly must be an
        arm of the experiment (``modelward experiment check`` counts arms that differ from
        the salt's). ``uses`` fills the model, prompt, embedder and reranker digests the
        exposure ran on; ``model_digest=`` … ``vendor_model_id=``, ``fingerprint_epoch=``
        and ``extra=`` may also be passed by name. Batched with the decisions (see
        docs/experiments.md)."""
        exp = self.experiment(experiment) if isinstance(experiment, str) else experiment
        subject = subject_text(subject)
        if arm is None:
            arm = exp.assign(subject)
        elif arm not in exp.arm_names:
            raise ValidationError(f"{arm!r} is not an arm of {exp.name} "
                                  f"({', '.join(exp.arm_names)})", field="arm")
        for res in uses:
            res = getattr(res, "resolution", res)
            field = KIND_FIELD.get(res.artifact_kind)
            if field is None or field == "config_digest":
                raise ValidationError(f"{res.alias} points at a {res.artifact_kind}, which an "
                                      "exposure does not name", field="uses")
            fields.setdefault(field, res.digest)
        row = ledger_experiments.normalize_exposure(
            {**fields, "id": id, "experiment": exp.name, "subject": subject, "arm": arm,
             "at": at, "metric": metric}, skew=self.store.settings.clock_skew)
        self.recorder.submit_exposure(row)
        return row[0]

    # --- threshold policies -------------------------------------------------------------
    def threshold_policy(self, name: str) -> ThresholdPolicy:
        """The latest version of threshold policy ``name``, read fresh from the ledger:
        ``policy.cut(scores)`` keeps the candidates at or above ``policy.cut_value``. Read
        it again after a recalibration (see docs/thresholds.md)."""
        with self.store.read() as conn:
            return ThresholdPolicy.from_version(ledger_thresholds.latest(conn, name))

    # --- feedback ---------------------------------------------------------------------
    def feedback(self, decision_id: str, *, surface: str, author_kind: str,
                 intent: str = "unknown", rating: float | None = None, author: str | None = None,
                 comment: str | None = None, correction: str | None = None, at=None,
                 id: str | None = None, meta: dict | None = None) -> str:  # noqa: A002
        """Record one feedback event on a decision; returns its id (UUIDv7 unless given).

        ``intent``: incorrect, unsafe, unhelpful, style, test, other or unknown; ``surface``:
        production, staging or internal; ``author_kind``: customer, employee or system.
        Validated, then written in one transaction; an unknown decision id raises
        ValidationError (a decision still queued in this process's recorder is flushed
        first). Repeating an id records nothing new (see docs/feedback.md)."""
        event = {k: v for k, v in dict(
            id=id, decision_id=decision_id, at=at, rating=rating, intent=intent,
            surface=surface, author_kind=author_kind, author=author, comment=comment,
            correction=correction, meta=meta).items() if v is not None}
        row = ledger_feedback.normalize(event)
        try:
            self._add_feedback(row)
        except ValidationError as exc:
            if exc.field != "decision_id" or self._recorder is None:
                raise
            self._recorder.flush()  # the decision may still be queued in this process
            self._add_feedback(row)
        return row["id"]

    def _add_feedback(self, row: dict) -> None:
        with self.store.write() as conn:
            ledger_feedback.add(conn, [row])

    def prometheus_collector(self):
        """A ``prometheus_client`` collector of this ledger's recorder (queue depth, commits,
        failures, flush latency) to register with the serving process's registry."""
        from .metrics import RecorderCollector

        return RecorderCollector(self)

    def flush(self, timeout: float = 60.0) -> None:
        if self._recorder is not None:
            self._recorder.flush(timeout)

    def close(self) -> None:
        with self._recorder_lock:
            recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.close()
        self.store.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(home: str | None = None, *, database_url: str | None = None, create: bool = True,
         **settings) -> Ledger:  # noqa: A001 - the public name users expect
    """Open the ledger named by arguments, ``MODELWARD_*`` env, modelward.toml or defaults.

    ``create`` initialises an empty database; a database at an older schema is refused
    with a hint to run ``modelward db upgrade``."""
    overrides = dict(settings, home=home, database_url=database_url)
    return Ledger(Settings(overrides), create=create)


__all__ = ["Experiment", "Ledger", "LoadedPrompt", "Recorder", "RenderedPrompt", "Resolution",
           "Resolved", "ThresholdPolicy", "assign", "assign_many", "open"]
