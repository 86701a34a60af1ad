"""Record a decision for every call of an OpenAI-compatible client.

>>> from openai import OpenAI
>>> from modelward.integrations.openai import instrument, context
>>> client = instrument(OpenAI(), ledger, uses=["prompt/support@production"])
>>> with context(subject="u-123") as rec:
...     client.chat.completions.create(model="gpt-4o", messages=[...])
>>> rec.decision_ids                      # one per call made inside the block

``chat.completions.create``, ``responses.create`` and ``embeddings.create`` are wrapped on
the client instance (sync ``OpenAI`` and ``AsyncOpenAI``). Each call records: the model asked
for — when it is a modelward alias, the alias and its resolved digest; otherwise the digest
of the hosted artifact ``openai:<model>`` (kind ``embedder`` for embeddings calls), which is
registered on first sight (the attribution policy, docs/integrations.md) and the name asked
for kept as ``extra.request_model`` — the response's ``model`` (``vendor_model_id``) and
``system_fingerprint`` (``vendor_fingerprint``), latency and usage (in ``extra``), and
input/output digests (the text itself only with ``keep_text=True``).

``uses`` applies per call kind: a list fills chat and responses calls with every
resolution, and embeddings calls with embedder resolutions only (a prompt does not produce
a vector); a dict ``{"chat.completions": [...], "responses": [...], "embeddings": [...]}``
says exactly which call kind uses what.

Streaming calls (``stream=True``, sync and async, chat completions and responses) are
recorded when the stream ends, with the text streamed, the served model id and
fingerprint, and the usage when the server sends it (``stream_options={"include_usage":
True}`` for chat); a stream closed or dropped before its end is recorded as abandoned
(``extra.stream = "abandoned"``) with what was streamed so far.

Recording never breaks the caller: a recording error is logged and the response is returned
unchanged; an exception from the API propagates unchanged and records nothing.
``with_raw_response`` is passed through unrecorded.
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
from types import SimpleNamespace

import orjson

from .. import digest as dg
from ..errors import NotFoundError, ValidationError
from ..timefmt import now_us
from ._attribution import KIND_FIELD, Attributor

log = logging.getLogger("modelward.integrations.openai")

ENDPOINTS = (("chat.completions", "chat.completions"), ("responses", "responses"),
             ("embeddings", "embeddings"))
EMBEDDINGS_KINDS = ("embedder",)  # what a list of ``uses`` contributes to an embeddings call


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
    ctx = CallContext(subject, segments, dict(uses) if isinstance(uses, dict) else tuple(uses),
                      extra)
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
                 extra, strict=True) -> None:
        self.ledger = ledger
        self.alias = alias
        self.uses = dict(uses) if isinstance(uses, dict) else tuple(uses)
        self.subject = subject
        self.segments = segments
        self.keep_text = keep_text
        self.vendor = vendor
        self.extra = extra
        self.attributor = Attributor(ledger.store)
        if strict:  # a typo raises here, at instrument(), not on every call later
            if alias is not None:
                ledger.resolve(alias)
            for use in (self.uses.values() if isinstance(self.uses, dict) else [self.uses]):
                for one in use:
                    ledger.resolve_use(one)

    def _resolutions(self, uses, endpoint: str, problems: list) -> dict:
        """Digest fields from ``uses`` for one call kind (see the module docstring)."""
        if isinstance(uses, dict):
            picked = list(uses.get(endpoint, ()))
            if endpoint == "chat.completions":
                picked += list(uses.get("chat", ()))
            kinds = None
        else:
            picked, kinds = list(uses), EMBEDDINGS_KINDS if endpoint == "embeddings" else None
        fields: dict = {}
        for use in picked:
            try:
                res = self.ledger.resolve_use(use)
            except (NotFoundError, ValidationError) as exc:
                problems.append(f"{use}: {exc.message}")  # recorded, marked: never dropped
                continue
            if kinds is not None and res.artifact_kind not in kinds:
                continue
            name = KIND_FIELD.get(res.artifact_kind)
            if name:
                fields.setdefault(name, res.digest)
        return fields

    def record(self, endpoint: str, kwargs: dict, response, at: int, latency_ms: float,
               stream: str | None = None) -> None:
        try:
            self._record(endpoint, kwargs, response, at, latency_ms, stream)
        except Exception:  # never break the caller: the response goes back unchanged
            log.warning("modelward could not record an OpenAI %s call", endpoint, exc_info=True)

    def _record(self, endpoint, kwargs, response, at, latency_ms, stream=None) -> None:
        ctx = _CONTEXT.get()
        model = kwargs.get("model")
        kind = "embedder" if endpoint == "embeddings" else "model"
        problems: list[str] = []
        if self.alias is not None:
            try:
                res = self.ledger.resolve(self.alias)
            except (NotFoundError, ValidationError) as exc:
                fields = {"alias": self.alias}
                problems.append(f"{self.alias}: {exc.message}")
            else:
                fields = {"alias": self.alias,
                          KIND_FIELD.get(res.artifact_kind, "model_digest"): res.digest}
        else:
            fields = self.attributor.attribute(model, vendor=self.vendor, kind=kind)
        for uses in (self.uses, ctx.uses if ctx else ()):
            for name, value in self._resolutions(uses, endpoint, problems).items():
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
        if stream is not None:
            extra["stream"] = stream  # "completed" or "abandoned"
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
        if problems:
            extra["uses_problems"] = problems
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
            at, start = now_us(), time.perf_counter()
            response = original(*args, **kwargs)
            if inspect.isawaitable(response):  # AsyncOpenAI: record once it is awaited
                return self._finish(endpoint, kwargs, response, at, start)
            if kwargs.get("stream"):
                return RecordedStream(self, endpoint, kwargs, response, at, start)
            self.record(endpoint, kwargs, response, at, (time.perf_counter() - start) * 1e3)
            return response

        create.__modelward__ = self
        return create

    async def _finish(self, endpoint, kwargs, pending, at, start):
        response = await pending
        if kwargs.get("stream"):
            return AsyncRecordedStream(self, endpoint, kwargs, response, at, start)
        self.record(endpoint, kwargs, response, at, (time.perf_counter() - start) * 1e3)
        return response


# --- streaming ----------------------------------------------------------------------------
class _Collected:
    """What a stream delivered, shaped like the response it stands for (for _record)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.id = self.model = self.system_fingerprint = self.usage = None
        self.parts: list[str] = []
        self.final = None  # responses: the Response of response.completed

    def add(self, event) -> None:
        if self.endpoint == "responses":
            kind = getattr(event, "type", None)
            if kind == "response.output_text.delta":
                self.parts.append(getattr(event, "delta", "") or "")
            elif kind in ("response.created", "response.in_progress"):
                resp = getattr(event, "response", None)
                self.id = getattr(resp, "id", None) or self.id
                self.model = getattr(resp, "model", None) or self.model
            elif kind in ("response.completed", "response.incomplete", "response.failed"):
                self.final = getattr(event, "response", None)
            return
        self.id = getattr(event, "id", None) or self.id
        self.model = getattr(event, "model", None) or self.model
        self.system_fingerprint = (getattr(event, "system_fingerprint", None)
                                   or self.system_fingerprint)
        if getattr(event, "usage", None) is not None:
            self.usage = event.usage
        for choice in getattr(event, "choices", None) or ():
            if getattr(choice, "index", 0) == 0:
                delta = getattr(choice, "delta", None)
                text = getattr(delta, "content", None)
                if text:
                    self.parts.append(text)

    def response(self):
        if self.final is not None:
            return self.final
        text = "".join(self.parts)
        if self.endpoint == "responses":
            return SimpleNamespace(id=self.id, model=self.model, usage=None,
                                   system_fingerprint=None, output_text=text)
        message = SimpleNamespace(content=text, tool_calls=None)
        return SimpleNamespace(id=self.id, model=self.model, usage=self.usage,
                               system_fingerprint=self.system_fingerprint,
                               choices=[SimpleNamespace(message=message)])


class _StreamBase:
    def __init__(self, inst, endpoint, kwargs, stream, at, start) -> None:
        self._inst, self._endpoint, self._kwargs = inst, endpoint, kwargs
        self._stream, self._at, self._start = stream, at, start
        self._collected = _Collected(endpoint)
        self._recorded = False

    def _done(self, how: str) -> None:
        if self._recorded:
            return
        self._recorded = True
        self._inst.record(self._endpoint, self._kwargs, self._collected.response(), self._at,
                          (time.perf_counter() - self._start) * 1e3, stream=how)

    def __getattr__(self, name):  # .response … of the underlying stream
        if name.startswith("_"):  # our own attributes, missing only while half-built
            raise AttributeError(name)
        return getattr(self._stream, name)

    def __del__(self):  # dropped before its end: what was streamed is what was served
        try:
            self._done("abandoned")
        except Exception:  # noqa: S110 - never raise from a finaliser
            pass


class RecordedStream(_StreamBase):
    """A sync ``openai.Stream`` that records its decision when it ends or is abandoned."""

    def __iter__(self):
        return self

    def __next__(self):
        try:
            event = next(self._iterator)
        except StopIteration:
            self._done("completed")
            raise
        self._collected.add(event)
        return event

    @property
    def _iterator(self):
        it = self.__dict__.get("_it")
        if it is None:
            it = self.__dict__["_it"] = iter(self._stream)
        return it

    def close(self) -> None:
        self._done("abandoned")
        self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncRecordedStream(_StreamBase):
    """An ``openai.AsyncStream`` that records its decision when it ends or is abandoned."""

    def __aiter__(self):
        return self

    async def __anext__(self):
        it = self.__dict__.get("_it")
        if it is None:
            it = self.__dict__["_it"] = self._stream.__aiter__()
        try:
            event = await it.__anext__()
        except StopAsyncIteration:
            self._done("completed")
            raise
        self._collected.add(event)
        return event

    async def close(self) -> None:
        self._done("abandoned")
        await self._stream.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


def _resource(client, path: str):
    obj = client
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def instrument(client, ledger, *, alias: str | None = None, uses: Iterable = (),
               subject: str | None = None, segments: dict | None = None,
               keep_text: bool = False, vendor: str = "openai", extra: dict | None = None,
               strict: bool = True):
    """Wrap ``client`` (``openai.OpenAI`` or ``AsyncOpenAI``) in place; returns it.

    ``alias``: record every call under this modelward alias (resolved per call) instead of
    attributing the ``model`` argument; ``uses``: aliases (resolved per call) or
    :class:`Resolution` objects filling the prompt, embedder, … digests; ``vendor``: the
    hosted-id prefix for models that are not aliases (``openai:<model>``). Instrumenting
    again replaces the earlier settings.

    An unknown alias or digest in ``alias``/``uses`` raises here (UnknownAliasError,
    UnknownArtifactError naming it). With ``strict=False``, or when an alias stops resolving
    later, each call is still recorded, its problems listed in ``extra["uses_problems"]``."""
    inst = _Instrumentation(ledger, alias=alias, uses=uses, subject=subject, segments=segments,
                            keep_text=keep_text, vendor=vendor, extra=extra, strict=strict)
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


__all__ = ["AsyncRecordedStream", "CallContext", "RecordedStream", "context", "instrument",
           "uninstrument"]
