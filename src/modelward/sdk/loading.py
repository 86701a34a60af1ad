"""What :meth:`Ledger.resolve` and :meth:`Ledger.prompt` return: a resolution that loads
exactly the payload it names, verified against its digest.

>>> model = ledger.resolve("chat/v1")
>>> model.digest                       # what the ledger records
>>> weights = model.path()             # a verified local file or directory, cached by digest
>>> prompt = ledger.prompt("prompt/support@production")
>>> text = prompt.render(question=q)   # a str carrying .digest: the template it came from
>>> ledger.record(uses=[model, prompt], input_text=text, output_text=answer)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..display import short_digest
from ..errors import ValidationError
from ..ledger import artifacts as ledger_artifacts
from ..ledger.aliases import Resolution
from ..ledger.artifacts import Artifact


@dataclass(frozen=True)
class Resolved(Resolution):
    """A :class:`Resolution` (``alias``, ``digest``, ``since`` …) that can load its payload.

    Every load is checked against ``digest``: a payload changed in the blob store is
    refused with BlobCorruptError, never handed to the caller."""

    _ledger: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, res: Resolution, ledger) -> Resolved:
        return cls(res.alias, res.digest, res.at, res.since, res.event_id, res.kind,
                   res.artifact_kind, ledger)

    def artifact(self) -> Artifact:
        """The registered artifact this alias resolved to."""
        with self._ledger.store.read() as conn:
            return ledger_artifacts.get(conn, self.digest)

    def path(self) -> Path:
        """A verified local copy of the payload: the file, or for a directory artifact a
        directory tree, cached by digest (the first call of an object-store payload
        downloads it; later calls of an unchanged copy cost a few ``stat`` calls). Read it,
        never write it."""
        from ..registry.loading import materialize

        return materialize(self._ledger.store, self.artifact())

    def read_bytes(self) -> bytes:
        """The payload of a file artifact, verified."""
        from ..registry.loading import read_bytes

        return read_bytes(self._ledger.store, self.artifact())

    def read_text(self, encoding: str = "utf-8") -> str:
        """The payload of a file artifact as text, verified."""
        data = self.read_bytes()
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            raise ValidationError(f"{self.alias} ({short_digest(self.digest)}) is not {encoding} "
                                  "text: use .read_bytes() or .path()",
                                  field="encoding") from None


class RenderedPrompt(str):
    """Rendered prompt text that remembers the prompt artifact it came from: ``digest``,
    ``alias`` and ``resolution`` (pass it, or the prompt, in ``record(uses=[…])``)."""

    resolution: Resolved

    def __new__(cls, text: str, resolution: Resolved) -> RenderedPrompt:
        obj = super().__new__(cls, text)
        obj.resolution = resolution
        return obj

    @property
    def digest(self) -> str:
        return self.resolution.digest

    @property
    def alias(self) -> str:
        return self.resolution.alias


@dataclass(frozen=True)
class LoadedPrompt(Resolved):
    """A prompt alias resolved and its template loaded (verified) in one step: rendering
    uses exactly the template whose digest is recorded."""

    template: Any = field(default=None, repr=False, compare=False)  # evals Prompt

    @property
    def text(self) -> str:
        """The template source."""
        return self.template.template

    @property
    def system(self) -> str | None:
        return self.template.system

    @property
    def few_shot(self) -> list:
        return self.template.few_shot

    def render(self, **variables) -> RenderedPrompt:
        """Render the template (sandboxed Jinja2, the eval harness's renderer, so an eval
        scores what production renders); a missing variable is a ValidationError."""
        return RenderedPrompt(self.template.render(variables), self)


def load_prompt(ledger, res: Resolution) -> LoadedPrompt:
    from ..evals.harness.prompts import load_prompt as parse_stored

    if res.artifact_kind != "prompt":
        raise ValidationError(f"{res.alias} points at a {res.artifact_kind}, not a prompt",
                              field="alias", hint="use ledger.resolve(alias) for other kinds")
    template = parse_stored(ledger.store, res.digest)  # read from the blob store, verified
    return LoadedPrompt(res.alias, res.digest, res.at, res.since, res.event_id, res.kind,
                        res.artifact_kind, ledger, template)


__all__ = ["LoadedPrompt", "RenderedPrompt", "Resolved"]
