"""OpenTelemetry: a span processor that stamps GenAI spans with the digests they ran on.

>>> from opentelemetry.sdk.trace import TracerProvider
>>> from modelward.integrations.otel import ModelwardSpanProcessor
>>> provider = TracerProvider()
>>> provider.add_span_processor(ModelwardSpanProcessor(
...     ledger, aliases=["chat/v1", "prompt/support@production"]))

On span start, each alias is resolved (read fresh from the ledger, cached for ``refresh``
seconds) and its digest set as ``modelward.<kind>_digest`` (``modelward.model_digest``,
``modelward.prompt_digest``, …); the first model alias also sets ``modelward.alias``.
When the span's ``gen_ai.request.model`` is itself a modelward alias, it is resolved too.
Only GenAI spans (a ``gen_ai.*`` attribute given at start) are stamped unless
``all_spans=True``. The OTLP ingest (``POST /v1/traces``, modelward.web.otlp) turns these
spans into decisions; :func:`decision_id` is the id a span's decision gets there.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping

from opentelemetry.sdk.trace import SpanProcessor

from ..errors import UnknownAliasError, ValidationError
from ._attribution import KIND_FIELD
from .otlp import SPAN_NAMESPACE

log = logging.getLogger("modelward.integrations.otel")
_MISSING = object()


def decision_id(span) -> str:
    """The decision id the OTLP ingest gives ``span`` (UUIDv5 of its trace and span ids)."""
    ctx = span.get_span_context()
    return str(uuid.uuid5(SPAN_NAMESPACE, f"{ctx.trace_id:032x}:{ctx.span_id:016x}"))


class ModelwardSpanProcessor(SpanProcessor):
    """Add ``modelward.*`` digest attributes to spans on start (never raises into tracing)."""

    def __init__(self, ledger, aliases: Iterable[str] | Mapping = (), *,
                 all_spans: bool = False, refresh: float = 1.0,
                 attributes: Mapping | None = None) -> None:
        self.ledger = ledger
        # a mapping's values are the alias names ({"model": "chat/v1", …})
        self.aliases = tuple(aliases.values() if isinstance(aliases, Mapping) else aliases)
        self.all_spans = all_spans
        self.refresh = refresh
        self.static = dict(attributes or {})
        self._cache: dict[str, tuple[float, object]] = {}

    def _resolve(self, alias: str):
        now = time.monotonic()
        hit = self._cache.get(alias)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            res = self.ledger.resolve(alias)
        except (UnknownAliasError, ValidationError):
            res = None
            if alias in self.aliases:  # once per refresh, not once per span
                log.warning("modelward: alias %r does not resolve; spans not stamped", alias)
        self._cache[alias] = (now + self.refresh, res)
        return res

    def attributes_for(self, request_model: str | None = None) -> dict:
        """The ``modelward.*`` attributes a span starting now gets."""
        out = {f"modelward.{k}" if not k.startswith("modelward.") else k: v
               for k, v in self.static.items()}
        names = list(self.aliases)
        if request_model and request_model not in names:
            names.append(request_model)
        for alias in names:
            res = self._resolve(alias)
            if res is None:
                continue
            field = KIND_FIELD.get(res.artifact_kind)
            if field is None or f"modelward.{field}" in out:
                continue
            out[f"modelward.{field}"] = res.digest
            if field == "model_digest":
                out.setdefault("modelward.alias", alias)
        return out

    def on_start(self, span, parent_context=None) -> None:
        try:
            attrs = span.attributes or {}
            if not self.all_spans and not any(k.startswith("gen_ai.") for k in attrs):
                return
            model = attrs.get("gen_ai.request.model")
            span.set_attributes(self.attributes_for(model if isinstance(model, str) else None))
        except Exception:  # tracing must never break the traced code
            log.warning("modelward could not stamp span %r", getattr(span, "name", "?"),
                        exc_info=True)

    def on_end(self, span) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


__all__ = ["ModelwardSpanProcessor", "decision_id"]
