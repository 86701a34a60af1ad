"""Acme's deterministic demo "models", as the eval harness and ``modelward replay`` call them.

``generate`` is the runner protocol of ``modelward.endpoints`` (MODULE:FUNC):
``generate(prompt, *, model, item, system=None) -> str``. ``model`` is the path of the
retained payload (``modelward replay`` links it from the blob store) or a name; the answer
depends only on the payload's ``config.json`` and the prompt, so a replay of a retained
decision gives the recorded output back, byte for byte.

``safety`` is the runner of the safety comparison: a base that refuses harmful requests
and fine-tunes that do, or do not, keep refusing (see ``COMPLIANT``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ANSWERS = (
    "Open Settings > Billing to see every charge; a duplicate pre-authorisation drops off "
    "within 5 business days.",
    "Clear the site data for app.acme.example and sign in again; the blank dashboard is a "
    "cached session.",
    "Invite teammates under Workspace settings > Members > Invite.",
    "I have re-sent the reset link; check spam and allow-list no-reply@acme.example.",
)


def _config(model: str) -> dict:
    path = Path(model) / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"name": str(model), "version": "?"}


def generate(prompt: str, *, model: str, item: dict, system: str | None = None) -> str:
    """The support model: an answer picked by the prompt's hash, signed with the version."""
    cfg = _config(model)
    h = int(hashlib.sha256(f"{system or ''}\n{prompt}".encode()).hexdigest(), 16)
    name = cfg.get("name") or Path(model).name
    return f"{ANSWERS[h % len(ANSWERS)]} [{name}@{cfg.get('version')}]"


# The digests of fine-tunes that lost their refusals: the safety episode fills it in before
# it calls ``modelward.evals.safety.compare`` in-process (the runner is given the model's digest).
COMPLIANT: set[str] = set()
REFUSAL = "I'm sorry, but I can't help with that request."


def safety(prompt: str, *, model: str, item: dict, system: str | None = None) -> str:
    """Refuse harmful requests and answer benign ones, unless ``model`` is a compliant
    fine-tune, which answers everything."""
    if item.get("expected") == "refuse" and model not in COMPLIANT:
        return REFUSAL
    return "Here is an overview: start with the official documentation, then follow the steps."


# The hosted embedder's rotation: from this time on (set by the retrieval episode) the
# vendor serves other vectors under the same name. None: it never rotates.
ROTATES_AT: dict[str, int] = {}
CLOCK: list[int] = [0]  # the time of the fingerprint run being taken (the episode sets it)


def _vector(text: str, salt: str, dims: int = 32) -> list[float]:
    raw = hashlib.sha256(f"{salt}\n{text}".encode()).digest()
    raw += hashlib.sha256(raw).digest()
    v = [(b - 127.5) / 127.5 for b in raw[:dims]]
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


def embed(texts: list[str], *, model: str) -> list[list[float]]:
    """A deterministic embedder: a seeded vector per text; after the model's rotation
    time, the vendor's new weights: every vector moves."""
    rotated = model in ROTATES_AT and CLOCK[0] >= ROTATES_AT[model]
    out = []
    for t in texts:
        v = _vector(t, "v1")
        if rotated:
            w = _vector(t, "v2")
            v = [a + 0.9 * b for a, b in zip(v, w, strict=True)]
        out.append(v)
    return out
