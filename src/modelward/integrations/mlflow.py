"""MLflow import: register model versions (digested from their artifacts) and their aliases.

:func:`import_mlflow` downloads every READY model version's artifacts with MLflow's artifact
API, registers the directory as a ``model`` artifact (name = registered model, version =
MLflow version, owner = the MLflow user who created the version or its run, when MLflow
knows one; meta with the run id, source and user) and points ``mlflow/<model>@<alias>`` at
the version each MLflow alias names. Versions already imported are not downloaded again,
so running it twice records nothing new. Keeping the ledger in step afterwards (polling and
webhooks) is :mod:`modelward.integrations.mlflow_watch`; both share this module's version
registration and alias recording. See docs/integrations.md.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError, ValidationError
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger.engine import Store

ACTOR = "mlflow"


@dataclass
class Change:
    """One thing an import did: a version registered, an alias moved, or something skipped."""

    action: str  # "registered" | "alias" | "skipped" | "alias-deleted"
    model: str
    version: str | None = None
    digest: str | None = None
    alias: str | None = None
    previous_digest: str | None = None
    kind: str | None = None  # alias event kind: create, move, rollback, delete
    message: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class ImportReport:
    registry_uri: str
    models: int = 0
    versions: int = 0
    known: int = 0  # versions imported before (not downloaded again)
    changes: list[Change] = field(default_factory=list)
    present: dict[str, str] = field(default_factory=dict)  # MLflow's aliases: name -> model

    def to_dict(self) -> dict:
        return {"registry_uri": self.registry_uri, "models": self.models,
                "versions": self.versions, "known": self.known,
                "changes": [c.to_dict() for c in self.changes]}


def redact(uri: str) -> str:
    """``uri`` without a password (kept in artifact metadata and alias evidence)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def alias_name(model: str, alias: str) -> str:
    return f"mlflow/{model}@{alias}"


def _client(tracking_uri: str, registry_uri: str | None):
    try:
        from mlflow import MlflowClient
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("the MLflow integration needs the mlflow package",
                          hint="pip install 'modelward[mlflow]'") from None
    if not tracking_uri:
        raise ValidationError("name the MLflow tracking URI", field="--tracking-uri")
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


def _paged(fetch) -> list:
    out, token = [], None
    while True:
        page = fetch(token)
        out.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return out


def _imported(store: Store, registry: str) -> dict[tuple[str, str], str]:
    """(model, version) -> digest of the versions imported from ``registry`` before."""
    with store.read() as conn:
        arts = ledger_artifacts.list_artifacts(conn, "model")
    found = {}
    for art in arts:
        meta = art.meta.get("mlflow") if isinstance(art.meta, dict) else None
        if isinstance(meta, dict) and meta.get("registry_uri") == registry:
            found[(meta.get("model"), str(meta.get("version")))] = art.digest
    return found


def import_mlflow(store: Store, tracking_uri: str, registry_uri: str | None = None, *,
                  known: dict | None = None, on_version: Callable | None = None,
                  reason: str = "imported from MLflow") -> ImportReport:
    """Register new model versions and record alias moves; see the module docstring.

    ``known`` (model, version) -> digest is read from the ledger when not given and
    updated in place; ``on_version(done, total)`` reports download progress."""
    from mlflow.exceptions import MlflowException

    registry = redact(registry_uri or tracking_uri)
    report = ImportReport(registry)
    if known is None:
        known = {}
    known.update(_imported(store, registry))
    try:
        client = _client(tracking_uri, registry_uri)
        models = _paged(lambda t: client.search_registered_models(max_results=100,
                                                                  page_token=t))
        work = []
        for rm in models:
            versions = _paged(lambda t, n=rm.name: client.search_model_versions(
                f"name='{n}'", max_results=200, page_token=t))
            work.append((rm, sorted(versions, key=lambda v: int(v.version))))
    except MlflowException as exc:
        detail = str(exc.message).split(". ")[0].strip().rstrip(".")
        raise ConfigError(f"cannot read the MLflow registry at {registry}: {detail}",
                          hint="check --tracking-uri / --registry-uri") from None
    report.models = len(work)
    pending = [(rm.name, v) for rm, vs in work for v in vs
               if (rm.name, str(v.version)) not in known and v.status == "READY"]
    report.versions = sum(len(vs) for _rm, vs in work)
    report.known = report.versions - len(pending)
    for done, (name, mv) in enumerate(pending, start=1):
        try:
            known[(name, str(mv.version))] = _register_version(
                store, client, tracking_uri, registry, name, mv, report)
        except MlflowException as exc:
            report.changes.append(Change("skipped", name, str(mv.version),
                                         message=f"artifacts not downloadable: {exc.message}"))
        if on_version is not None:
            on_version(done, len(pending))
    for rm, _versions in work:
        _record_aliases(store, rm, known, registry, reason, report)
    return report


def version_user(client, mv) -> str | None:
    """The MLflow user who created a model version, else who ran its run; None when MLflow
    does not know (no authentication, no ``mlflow.user``)."""
    user = (getattr(mv, "user_id", None) or "").strip()
    if not user and mv.run_id:
        try:
            user = (client.get_run(mv.run_id).info.user_id or "").strip()
        except Exception:  # a deleted run, a registry without the tracking store
            user = ""
    return user[:320] or None


def _register_version(store, client, tracking_uri, registry, name, mv, report) -> str:
    import mlflow.artifacts

    uri = client.get_model_version_download_uri(name, mv.version)
    user = version_user(client, mv)
    with tempfile.TemporaryDirectory(prefix="modelward-mlflow-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp,
                                                    tracking_uri=tracking_uri)
        meta = {"mlflow": {"registry_uri": registry, "model": name,
                           "version": str(mv.version), "run_id": mv.run_id or None,
                           "source": redact(mv.source or uri),
                           "description": mv.description or None, "user": user}}
        created = int(mv.creation_timestamp) * 1000 if mv.creation_timestamp else None
        reg = ledger_artifacts.register_path(store, "model", Path(local), name=name,
                                             version=str(mv.version), meta=meta, at=created,
                                             owner=user)
    if reg.created:
        report.changes.append(Change("registered", name, str(mv.version), reg.artifact.digest))
    return reg.artifact.digest


def _record_aliases(store, rm, known, registry, reason, report) -> None:
    aliases = dict(getattr(rm, "aliases", None) or {})
    if not aliases:
        return
    with store.write() as conn:
        for alias, version in sorted(aliases.items()):
            name = alias_name(rm.name, alias)
            report.present[name] = rm.name
            digest = known.get((rm.name, str(version)))
            if digest is None:
                report.changes.append(Change(
                    "skipped", rm.name, str(version), alias=name,
                    message="its version is not imported (not READY or not downloadable)"))
                continue
            try:
                ledger_aliases.check_alias(name)
            except ValidationError:
                report.changes.append(Change("skipped", rm.name, str(version), alias=name,
                                             message="not a valid modelward alias name"))
                continue
            event, moved = ledger_aliases.set_alias(
                conn, name, digest, actor=ACTOR, reason=reason,
                evidence={"mlflow_model": rm.name, "mlflow_version": str(version),
                          "registry_uri": registry})
            if moved:
                report.changes.append(Change("alias", rm.name, str(version), digest,
                                             alias=name, previous_digest=event.previous_digest,
                                             kind=event.kind))
