"""Embedding runners: what turns probe texts into vectors.

``--runner MODULE:FUNC`` names a Python callable::

    FUNC(texts: list[str], *, model: str) -> list[list[float]]

where ``model`` is the embedder artifact's hosted id (``openai:text-embedding-3-small``)
or, for an embedder whose payload we hold, its digest.

``--runner http(s)://HOST[:PORT]/v1`` names any OpenAI-compatible server: one
``POST {URL}/embeddings`` per batch with ``model`` = the vendor model id without its vendor
prefix (hosted artifacts) or the artifact's name, and ``input`` = the texts. The ``model``
the server answers with is kept as the vendor-reported model id. ``OPENAI_API_KEY``, when
set, is sent as the bearer token. Loading and HTTP are shared with the eval runners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from ..endpoints import (
    CALLABLE_RE,
    DEFAULT_TIMEOUT,
    RunnerError,
    endpoint_url,
    import_callable,
    post_json,
    vendor_model_name,
)
from ..errors import ValidationError
from ..ledger.artifacts import Artifact

BATCH = 256  # texts per request: well under the input limits of the hosted APIs


@dataclass
class Embedded:
    vectors: list[list[float]]
    vendor_model_id: str | None = None


def _check(vectors: object, n: int, spec: str) -> list[list[float]]:
    if not isinstance(vectors, (list, tuple)) or len(vectors) != n:
        got = len(vectors) if isinstance(vectors, (list, tuple)) else type(vectors).__name__
        raise RunnerError(f"{spec} returned {got} vectors for {n} texts")
    out = []
    for v in vectors:
        try:
            row = [float(x) for x in v]
        except (TypeError, ValueError):
            raise RunnerError(f"{spec} returned a vector that is not a list of numbers") from None
        if not row or not all(math.isfinite(x) for x in row):
            raise RunnerError(f"{spec} returned an empty vector or one with NaN/inf")
        out.append(row)
    if len({len(r) for r in out}) > 1:
        raise RunnerError(f"{spec} returned vectors of different lengths")
    return out


class PythonEmbedder:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.fn = import_callable(spec, "--runner")

    def embed(self, texts: list[str], embedder: Artifact) -> Embedded:
        model = embedder.hosted_id or embedder.digest
        try:
            vectors = self.fn(list(texts), model=model)
        except Exception as exc:  # the user's code: name it
            raise RunnerError(f"{self.spec} raised {type(exc).__name__}: {exc}") from exc
        if hasattr(vectors, "tolist"):  # a numpy array is fine too
            vectors = vectors.tolist()
        return Embedded(_check(vectors, len(texts), self.spec))


class OpenAIEmbedder:
    def __init__(self, spec: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.spec = spec
        self.url = endpoint_url(spec, "embeddings")
        self.timeout = timeout

    def embed(self, texts: list[str], embedder: Artifact) -> Embedded:
        name = vendor_model_name(embedder)
        vectors: list[list[float]] = []
        reported: set[str] = set()
        for i in range(0, len(texts), BATCH):
            part = texts[i:i + BATCH]
            raw = post_json(self.url, {"model": name, "input": part}, timeout=self.timeout)
            try:
                answer = orjson.loads(raw)
                data = sorted(answer["data"], key=lambda d: d.get("index", 0))
                got = [d["embedding"] for d in data]
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise RunnerError(f"POST {self.url} did not answer with OpenAI embeddings "
                                  f"(data[].embedding): {raw[:200]!r}") from None
            vectors += _check(got, len(part), f"POST {self.url}")
            if isinstance(answer.get("model"), str):
                reported.add(answer["model"])
        return Embedded(vectors, ",".join(sorted(reported)) or None)


def parse_embedder_runner(spec: str, *, timeout: float = DEFAULT_TIMEOUT):
    """``--runner``: an http(s) URL or MODULE:FUNC; ValidationError otherwise."""
    text = (spec or "").strip()
    if text.startswith(("http://", "https://")):
        return OpenAIEmbedder(text, timeout=timeout)
    if CALLABLE_RE.match(text):
        return PythonEmbedder(text)
    raise ValidationError(f"not an embedding runner: {spec!r}", field="--runner",
                          hint="give MODULE:FUNC or the URL of an OpenAI-compatible server, "
                               "e.g. http://localhost:8000/v1")
