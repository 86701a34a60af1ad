"""Calling model and embedding endpoints, shared by evals, retrieval and replay.

Runners: what turns a rendered prompt into an output.

``--runner MODULE:FUNC`` names a Python callable, called per item as::

    FUNC(prompt: str, *, model: str, item: dict) -> str

where ``model`` is the model artifact's hosted id (``openai:gpt-4o-2024-08-06``) or, for a
model whose payload we hold, its digest. A FUNC that declares a ``system`` parameter also
receives the prompt's system text.

``--runner http(s)://HOST[:PORT]/v1`` names any OpenAI-compatible server: each item is one
``POST {URL}/chat/completions`` with ``model`` = the vendor model id without its vendor
prefix (hosted artifacts) or the artifact's name, and ``messages`` = [system?, user]. A URL
with no path gets ``/v1``; a URL already ending in ``/chat/completions`` is used as given.
``OPENAI_API_KEY``, when set, is sent as the bearer token.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from .errors import ValidationError
from .ledger.artifacts import Artifact

DEFAULT_TIMEOUT = 60.0

CALLABLE_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def import_callable(spec: str, option: str) -> Callable:
    """``module:func``, importable from the working directory as well as sys.path."""
    module_name, _, attr = spec.partition(":")
    cwd = str(Path.cwd())
    if cwd not in sys.path:  # console scripts do not put the working directory on the path
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValidationError(f"cannot import {module_name!r} for {spec}: {exc}",
                              field=option) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValidationError(f"{module_name} has no callable {attr!r}", field=option)
    return fn


class Served(str):
    """A runner's output text that also says what served it: ``model_id`` and
    ``fingerprint`` as the endpoint reported them (OpenAI's ``model`` and
    ``system_fingerprint``). A Python runner may return one to report them too."""

    model_id: str | None
    fingerprint: str | None

    def __new__(cls, text: str, model_id: str | None = None,
                fingerprint: str | None = None) -> Served:
        obj = super().__new__(cls, text)
        obj.model_id = model_id if isinstance(model_id, str) else None
        obj.fingerprint = fingerprint if isinstance(fingerprint, str) else None
        return obj


def served_by(output) -> tuple[str | None, str | None]:
    """(model id, fingerprint) a runner reported with ``output``; (None, None) if none."""
    return getattr(output, "model_id", None), getattr(output, "fingerprint", None)


class RunnerError(Exception):
    """One item's call failed; the message names the runner (and the URL)."""


@dataclass(frozen=True)
class Call:
    prompt: str
    system: str | None
    item: dict


class Runner:
    spec: str

    def bind(self, model: Artifact, *, model_id: str | None = None) -> Callable[[Call], str]:
        """The per-item call for one model artifact. ``model_id``, when given, is what a
        Python runner receives as ``model`` instead (replay passes the retained payload's
        path); an HTTP runner always names the model as the server knows it."""
        raise NotImplementedError


class PythonRunner(Runner):
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.fn = import_callable(spec, "--runner")
        try:
            params = inspect.signature(self.fn).parameters
        except (TypeError, ValueError):  # some builtins have no signature
            params = {}
        self.takes_system = "system" in params

    def bind(self, model: Artifact, *, model_id: str | None = None) -> Callable[[Call], str]:
        model_id = model_id or model.hosted_id or model.digest

        def call(c: Call) -> str:
            kw = {"system": c.system} if self.takes_system else {}
            try:
                out = self.fn(c.prompt, model=model_id, item=c.item, **kw)
            except Exception as exc:  # the user's code: report it on the item, keep going
                raise RunnerError(f"{self.spec} raised {type(exc).__name__}: {exc}") from exc
            if not isinstance(out, str):
                raise RunnerError(f"{self.spec} returned {type(out).__name__}, not str")
            return out
        return call


def endpoint_url(url: str, endpoint: str) -> str:
    """``{url}/{endpoint}`` of an OpenAI-compatible server (``/v1`` when the URL has no
    path; a URL already ending in the endpoint is used as given)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"not an http(s) URL: {url!r}", field="--runner")
    if "@" in parts.netloc:  # the URL is recorded on every run: keep secrets out of it
        raise ValidationError("the runner URL must not hold credentials", field="--runner",
                              hint="set OPENAI_API_KEY instead")
    path = parts.path.rstrip("/")
    if not path.endswith("/" + endpoint):
        path = (path or "/v1") + "/" + endpoint
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def chat_completions_url(url: str) -> str:
    return endpoint_url(url, "chat/completions")


def openai_headers() -> dict:
    """JSON headers, with ``OPENAI_API_KEY`` as the bearer token when it is set."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def post_json(url: str, payload: object, *, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """POST ``payload`` as JSON; the raw answer, or RunnerError naming the URL."""
    request = urllib.request.Request(url, data=orjson.dumps(payload), headers=openai_headers(),
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace").strip()
        raise RunnerError(f"POST {url} returned HTTP {exc.code}"
                          + (f": {detail}" if detail else "")) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):  # socket.timeout is TimeoutError
            raise RunnerError(f"POST {url} timed out after {timeout:g}s") from None
        raise RunnerError(f"cannot reach {url}: {exc.reason}") from None
    except TimeoutError:
        raise RunnerError(f"POST {url} timed out after {timeout:g}s") from None
    except OSError as exc:  # connection reset mid-response and the like
        raise RunnerError(f"POST {url} failed: {exc}") from None


def vendor_model_name(model: Artifact) -> str:
    """``gpt-4o`` for hosted ``openai:gpt-4o``; the artifact's name otherwise."""
    if model.hosted_id:
        return model.hosted_id.partition(":")[2]
    return model.name


class OpenAIRunner(Runner):
    def __init__(self, spec: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.spec = spec
        self.url = chat_completions_url(spec)
        self.timeout = timeout

    def bind(self, model: Artifact, *, model_id: str | None = None) -> Callable[[Call], str]:
        name = vendor_model_name(model)

        def call(c: Call) -> str:
            messages = ([{"role": "system", "content": c.system}] if c.system else [])
            messages.append({"role": "user", "content": c.prompt})
            return self._post({"model": name, "messages": messages})
        return call

    def _post(self, payload: dict) -> str:
        raw = post_json(self.url, payload, timeout=self.timeout)
        try:
            doc = orjson.loads(raw)
            content = doc["choices"][0]["message"]["content"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            raise RunnerError(f"POST {self.url} did not answer with an OpenAI chat completion "
                              f"(choices[0].message.content): {raw[:200]!r}") from None
        if not isinstance(content, str):
            raise RunnerError(f"POST {self.url} answered with no text content")
        return Served(content, doc.get("model"), doc.get("system_fingerprint"))


def parse_runner(spec: str, *, timeout: float = DEFAULT_TIMEOUT) -> Runner:
    """``--runner``: an http(s) URL or MODULE:FUNC; ValidationError otherwise."""
    text = (spec or "").strip()
    if text.startswith(("http://", "https://")):
        return OpenAIRunner(text, timeout=timeout)
    if CALLABLE_RE.match(text):
        return PythonRunner(text)
    raise ValidationError(f"not a runner: {spec!r}", field="--runner",
                          hint="give MODULE:FUNC or the URL of an OpenAI-compatible server, "
                               "e.g. http://localhost:8000/v1")
