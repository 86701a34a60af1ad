"""Record a decision for every call of an OpenAI-compatible client.

>>> from openai import OpenAI
>>> from modelward.integrations.openai import instrument, context
>>> client = instrument(OpenAI(), ledger, uses=["prompt/support@production"])
>>> with context(subject="u-123") as rec:
...     client.chat.completions.create(model="gpt-4o", messages=[...])
>>> rec.decision_ids                      # one per call made inside the block

``chat.completions.create``, ``responses.create`` and ``embeddings.create`` are wrapped on
the client instance (sync ``OpenAI`` and ``AsyncOpenAI``). Each call records: the model asked
for (its alias and resolved digest when it is a modelward alias, else the digest of the
hosted model ``openai:<model>``, registered on first sight), the response's ``model``
(``vendor_model_id``) and ``system_fingerprint`` (``vendor_fingerprint``), latency and usage
(in ``extra``), and input/output digests (the text itself only with ``keep_text=True``).

Recording never breaks the caller: a recording error is logged and the response is returned
unchanged; an exception from the API propagates unchanged and records nothing. Streaming
calls (``stream=True``) and ``with_raw_response`` are passed through unrecorded.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson

from .. import digest as dg
from ..ledger.aliases import Resolution
from ..timefmt import now_us
from ._attribution import KIND_FIELD, Attributor

log = logging.getLogger("modelward.integrations.openai")

ENDPOINTS = (("chat.completions", "chat.completions"), ("responses", "responses"),
             ("embeddings", "embeddings"))


@dataclass
class CallContext:
    """Per-call settings for the calls made inside :func:`context`; collects decision ids."""

    subject: str | None = None
    segments: dict | None = None
    uses: tuple = ()
    extra: dict | None = None
    decision_ids: list[str] = field(default_factory=list)


_CONTEXT: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "modelward_openai_context", default=None)


@contextmanager
def context(*, subject: str | None = None, segments: dict | None = None,
            uses: Iterable = (), extra: dict | None = None):
    """Give the calls made inside the block a subject, segments, extra resolutions
    (``uses``: aliases or :class:`Resolution` objects) and extra fields; yields a
    :class:`CallContext` whose ``decision_ids`` lists the decisions recorded."""
    ctx = CallContext(subject, segments, tuple(uses), extra)
    token = _CONTEXT.set(ctx)
    try:
        yield ctx
    finally:
        _CONTEXT.reset(token)


def _json_text(value) -> str:
    """Canonical JSON text of request or response content (pydantic objects dumped)."""
    def default(obj):
        if hasattr(obj, "model_dump"):
            return obj.model_dump(exclude_none=True)
        if isinstance(obj, (tuple, set)):
            return list(obj)
        return str(obj)
    return orjson.dumps(value, default=default, option=orjson.OPT_SORT_KEYS).decode()


def _input_text(endpoint: str, kwargs: dict) -> str | None:
    if endpoint == "chat.completions":
        messages = kwargs.get("messages")
        return None if messages is None else _json_text(list(messages))
    value = kwargs.get("input")
    instructions = kwargs.get("instructions") if endpoint == "responses" else None
    if value is None and instructions is None:
        return None
    if isinstance(value, str) and instructions is None:
        return value
    if instructions is None:
        return _json_text(value)
    return _json_text({"instructions": instructions, "input": value})


def _output(endpoint: str, response) -> tuple[str | None, str | None]:
    """(output text, output digest) of a response."""
    if endpoint == "embeddings":
        vectors = [getattr(d, "embedding", None) for d in getattr(response, "data", None) or ()]
        return None, dg.of_bytes(orjson.dumps(vectors))
    if endpoint == "responses":
        text = getattr(response, "output_text", None)
    else:
        texts = []
        for choice in getattr(response, "choices", None) or ():
            message = getattr(choice, "message", None)
            content = getattr(message, "content", None)
            if content is None and getattr(message, "tool_calls", None):
                content = _json_text(message.tool_calls)
            texts.append(content or "")
        text = texts[0] if len(texts) == 1 else (_json_text(texts) if texts else None)
    return text, None if text is None else dg.of_text(text)


class _Instrumentation:
    def __init__(self, ledger, *, alias, uses, subject, segments, keep_text, vendor,
                 extra) -> None:
        self.ledger = ledger
        self.alias = alias
        self.uses = tuple(uses)
        self.subject = subject
        self.segments = segments
        self.keep_text = keep_text
        self.vendor = vendor
        self.extra = extra
        self.attributor = Attributor(ledger.store)

    def _resolutions(self, uses) -> dict:
        fields: dict = {}
        for use in uses:
            res = use if isinstance(use, Resolution) else self.ledger.resolve(use)
            name = KIND_FIELD.get(res.artifact_kind)
            if name:
                fields.setdefault(name, res.digest)
        return fields

    def record(self, endpoint: str, kwargs: dict, response, at: int, latency_ms: float) -> None:
        try:
            self._record(endpoint, kwargs, response, at, latency_ms)
        except Exception:  # never break the caller: the response goes back unchanged
            log.warning("modelward could not record an OpenAI %s call", endpoint, exc_info=True)

    def _record(self, endpoint, kwargs, response, at, latency_ms) -> None:
        ctx = _CONTEXT.get()
        model = kwargs.get("model")
        kind = "embedder" if endpoint == "embeddings" else "model"
        if self.alias is not None:
            res = self.ledger.resolve(self.alias)
            fields = {"alias": self.alias, KIND_FIELD.get(res.artifact_kind, "model_digest"):
                      res.digest}
        else:
            fields = self.attributor.attribute(model, vendor=self.vendor, kind=kind)
        for name, value in self._resolutions(self.uses + (ctx.uses if ctx else ())).items():
            fields.setdefault(name, value)
        fields["at"] = at
        fields["vendor_model_id"] = getattr(response, "model", None)
        fields["vendor_fingerprint"] = getattr(response, "system_fingerprint", None)
        subject = ctx.subject if ctx and ctx.subject is not None else self.subject
        if subject is not None:
            fields["subject"] = subject
        segments = {**(self.segments or {}), **((ctx.segments or {}) if ctx else {})}
        if segments:
            fields["segments"] = segments
        extra = {"endpoint": endpoint, "latency_ms": round(latency_ms, 3)}
        usage = getattr(response, "usage", None)
        if usage is not None:
            extra["usage"] = (usage.model_dump(exclude_none=True)
                              if hasattr(usage, "model_dump") else dict(usage))
        if getattr(response, "id", None):
            extra["response_id"] = response.id
        if model is not None and fields.get("alias") != model:
            extra["request_model"] = model
        extra.update(self.extra or {})
        extra.update((ctx.extra or {}) if ctx else {})
        fields["extra"] = extra
        input_text = _input_text(endpoint, kwargs)
        output_text, output_digest = _output(endpoint, response)
        if self.keep_text:
            fields["input_text"], fields["output_text"] = input_text, output_text
        else:
            fields["input_digest"] = None if input_text is None else dg.of_text(input_text)
            fields["output_digest"] = output_digest or (
                None if output_text is None else dg.of_text(output_text))
        if output_digest is not None:  # embeddings: the vectors' digest, never text
            fields["output_digest"] = output_digest
        decision_id = self.ledger.record(**{k: v for k, v in fields.items() if v is not None})
        if ctx is not None:
            ctx.decision_ids.append(decision_id)

    def wrap(self, endpoint: str, original):
        @functools.wraps(original)
        def create(*args, **kwargs):
            if kwargs.get("stream"):
                return original(*args, **kwargs)
            at, start = now_us(), time.perf_counter()
            response = original(*args, **kwargs)
            if inspect.isawaitable(response):  # AsyncOpenAI: record once it is awaited
                return self._finish(endpoint, kwargs, response, at, start)
            self.record(endpoint, kwargs, response, at, (time.perf_counter() - start) * 1e3)
            return response

        create.__modelward__ = self
        return create

    async def _finish(self, endpoint, kwargs, pending, at, start):
        response = await pending
        self.record(endpoint, kwargs, response, at, (time.perf_counter() - start) * 1e3)
        return response


def _resource(client, path: str):
    obj = client
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def instrument(client, ledger, *, alias: str | None = None, uses: Iterable = (),
               subject: str | None = None, segments: dict | None = None,
               keep_text: bool = False, vendor: str = "openai", extra: dict | None = None):
    """Wrap ``client`` (``openai.OpenAI`` or ``AsyncOpenAI``) in place; returns it.

    ``alias``: record every call under this modelward alias (resolved per call) instead of
    attributing the ``model`` argument; ``uses``: aliases (resolved per call) or
    :class:`Resolution` objects filling the prompt, embedder, … digests; ``vendor``: the
    hosted-id prefix for models that are not aliases (``openai:<model>``). Instrumenting
    again replaces the earlier settings."""
    inst = _Instrumentation(ledger, alias=alias, uses=uses, subject=subject, segments=segments,
                            keep_text=keep_text, vendor=vendor, extra=extra)
    for path, endpoint in ENDPOINTS:
        resource = _resource(client, path)
        if resource is None or not hasattr(resource, "create"):
            continue
        original = resource.create
        original = getattr(original, "__wrapped__", original) if hasattr(
            original, "__modelward__") else original
        resource.create = inst.wrap(endpoint, original)
    return client


def uninstrument(client):
    """Undo :func:`instrument`; returns the client."""
    for path, _endpoint in ENDPOINTS:
        resource = _resource(client, path)
        if resource is not None and hasattr(resource.__dict__.get("create"), "__modelward__"):
            del resource.__dict__["create"]
    return client


__all__ = ["CallContext", "context", "instrument", "uninstrument"]
