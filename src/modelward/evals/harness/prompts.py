"""Prompt artifacts: a template (sandboxed Jinja2) with optional system text and few-shot
examples, read fresh from the blob store every time (nothing caches a template).

A prompt artifact's payload is either the template text itself, or a JSON object::

    {"template": "Answer {{ question }}", "system": "You are …",
     "few_shot": [{"question": "…", "answer": "…"}, …]}

Templates see the eval item's input fields at top level (``{{ question }}``), the whole item
as ``item``, and the examples as ``few_shot`` (``{% for ex in few_shot %}…{% endfor %}``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ...display import short_digest
from ...errors import ValidationError

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                     keep_trailing_newline=True)


@dataclass(frozen=True)
class Prompt:
    digest: str
    template: str
    system: str | None = None
    few_shot: list[dict] = field(default_factory=list)

    def render(self, variables: dict) -> str:
        """Render for one item; a missing variable or a sandbox violation is a ValidationError."""
        context = dict(variables)
        context.setdefault("few_shot", self.few_shot)
        context.setdefault("system", self.system)
        try:
            return _ENV.from_string(self.template).render(context)
        except TemplateError as exc:
            raise ValidationError(f"prompt {short_digest(self.digest)} failed to render: {exc}",
                                  field="template") from None

    def renderer(self) -> Callable[[dict], str]:
        """Compile the template once and return a function rendering one item with it, so
        a run does not recompile per item. Nothing keeps it beyond the caller: the harness
        loads the Prompt fresh from the blob store for every run."""
        try:
            template = _ENV.from_string(self.template)
        except TemplateError as exc:
            raise ValidationError(f"prompt {short_digest(self.digest)} failed to render: {exc}",
                                  field="template") from None

        def render(variables: dict) -> str:
            context = dict(variables)
            context.setdefault("few_shot", self.few_shot)
            context.setdefault("system", self.system)
            try:
                return template.render(context)
            except TemplateError as exc:
                raise ValidationError(f"prompt {short_digest(self.digest)} failed to render: {exc}",
                                      field="template") from None
        return render

    def texts(self) -> list[tuple[str, str]]:
        """(where, text) pairs a contamination scan reads: template, system, each example."""
        out = [("template", self.template)]
        if self.system:
            out.append(("system", self.system))
        for i, ex in enumerate(self.few_shot):
            if isinstance(ex, dict):
                text = "\n".join(str(v) for v in ex.values() if v is not None)
            else:
                text = str(ex)
            out.append((f"few_shot[{i}]", text))
        return out


def parse_prompt(digest: str, payload: bytes) -> Prompt:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"prompt {digest} is not UTF-8 text", field="prompt") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            obj = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "template" in obj:
            unknown = obj.keys() - {"template", "system", "few_shot"}
            if unknown:
                raise ValidationError(f"prompt {digest}: unknown key(s) {sorted(unknown)}",
                                      field="prompt")
            if not isinstance(obj["template"], str):
                raise ValidationError("template must be a string", field="prompt.template")
            few = obj.get("few_shot") or []
            if not isinstance(few, list):
                raise ValidationError("few_shot must be a list", field="prompt.few_shot")
            return Prompt(digest, obj["template"], obj.get("system"), few)
    return Prompt(digest, text)


def load_prompt(store, digest: str) -> Prompt:
    """Read and parse a prompt artifact's payload from the blob store (verified on read)."""
    return parse_prompt(digest, store.blobs.get(digest))
