"""Turn "the model asked for" into decision fields: an alias's resolved digest, or the
digest of a hosted model registered on first sight (so decisions stay attributed)."""

from __future__ import annotations

import threading
import time

from .. import digest as dg
from ..errors import UnknownAliasError, ValidationError
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger.decision_fields import KIND_FIELD
from ..ledger.engine import Store


class Attributor:
    """Attribute model names to digests for one store; hosted registrations are cached."""

    def __init__(self, store: Store, *, not_alias_ttl: float = 1.0) -> None:
        self.store = store
        self.not_alias_ttl = not_alias_ttl
        self._hosted: dict[str, str] = {}  # digest -> artifact kind, known registered
        self._not_alias: dict[str, float] = {}  # name -> monotonic time to look again
        self._lock = threading.Lock()

    def resolve(self, alias: str, at: int | None = None):
        """The alias's Resolution at ``at``, or None when ``alias`` is not a modelward alias.

        An alias is resolved fresh on every call; a name found *not* to be an alias now is
        remembered for ``not_alias_ttl`` seconds (the failed lookup was ~1 ms of a ~1.1 ms
        recording step on SQLite), so an alias created under a vendor model's name is
        picked up within that time."""
        try:
            ledger_aliases.check_alias(alias)
        except ValidationError:
            return None
        now_only = at is None
        if now_only and self._not_alias.get(alias, 0.0) > time.monotonic():
            return None
        try:
            with self.store.read() as conn:
                return ledger_aliases.resolve_at(conn, alias, at)
        except UnknownAliasError:
            if now_only:
                if len(self._not_alias) > 10_000:
                    self._not_alias.clear()
                self._not_alias[alias] = time.monotonic() + self.not_alias_ttl
            return None

    def hosted(self, vendor: str, model: str, *, kind: str = "model") -> tuple[str, str]:
        """Register ``vendor:model`` once (idempotent); returns (digest, artifact kind)."""
        hosted_id = f"{vendor}:{model}"
        digest = dg.of_text(hosted_id)
        found = self._hosted.get(digest)
        if found is not None:
            return digest, found
        reg = ledger_artifacts.register_hosted(
            self.store, hosted_id, name=model, kind=kind,
            meta={"registered_by": "modelward.integrations"})
        with self._lock:
            self._hosted[digest] = reg.artifact.kind
        return digest, reg.artifact.kind

    def attribute(self, model: str | None, *, vendor: str | None, kind: str = "model",
                  at: int | None = None) -> dict:
        """Decision fields for the model asked for.

        The attribution policy (docs/integrations.md): a modelward alias gives ``alias`` and
        its resolved digest; any other name from a known vendor is the hosted artifact
        ``VENDOR:NAME`` (kind ``kind``: ``embedder`` for embeddings calls), registered on
        first sight, and only its digest is recorded — a vendor's model name is not an
        alias, so neither MW101 nor the audit treats it as one. A name with no vendor stays
        ``alias`` with no digest, which MW101 reports."""
        if not model:
            return {}
        res = self.resolve(model, at)
        if res is not None:
            field = KIND_FIELD.get(res.artifact_kind)
            return {"alias": model, field: res.digest} if field else {"alias": model}
        if not vendor:
            return {"alias": model[:200]}
        digest, art_kind = self.hosted(vendor, model, kind=kind)
        return {KIND_FIELD.get(art_kind, "model_digest"): digest}
