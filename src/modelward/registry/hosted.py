"""Hosted models: did the vendor serve the pinned snapshot a decision names?

A hosted artifact's content is its vendor id (``openai:gpt-4o-2024-08-06``). The vendor
reports the model that actually served each call (``response.model``, recorded as
``vendor_model_id``). A hosted id is *pinned* when its model id ends in a snapshot: a date
(``gpt-4o-2024-08-06``, ``claude-3-5-sonnet-20241022``), a three-digit revision
(``text-embedding-004``, ``gemini-1.5-pro-002``) or ``@NNN`` — or when its metadata says
``{"pinned": true}``. A floating name (``gpt-4o``) moves between snapshots by design;
MW104 watches it for changes instead.

A pinned artifact and the reported id agree when the id is the artifact's model id, or
that id followed by a suffix of digits (a finer snapshot of the same model). Anything else
— ``gpt-4o-2024-08-06`` served as ``gpt-4o-2024-11-20`` — is a decision that did not run on
what it names. A ``models/`` prefix (Google's form) is ignored; ids a vendor legitimately
reports for an artifact can be listed in its metadata, ``{"served_as": ["…"]}``.
"""

from __future__ import annotations

import re

_SNAPSHOT = re.compile(r"[-@:._]?\d[\d.\-]*")
_PINNED = re.compile(r".*(\d{4}-\d{2}-\d{2}|\d{8}|-\d{3}|@\d{3,})")


def is_pinned(hosted_id: str, meta=None) -> bool:
    """Whether ``hosted_id`` names one snapshot (see the module docstring)."""
    if isinstance(meta, dict) and isinstance(meta.get("pinned"), bool):
        return meta["pinned"]
    return bool(_PINNED.fullmatch(hosted_id.partition(":")[2]))


def served_matches(hosted_id: str, served: str, accepted=()) -> bool:
    """Whether ``served`` (a vendor-reported model id) is the model ``hosted_id`` names."""
    model = hosted_id.partition(":")[2]
    served = served.strip()
    if served.startswith("models/") and not model.startswith("models/"):
        served = served[len("models/"):]
    if served == model or served in accepted:
        return True
    return served.startswith(model) and bool(_SNAPSHOT.fullmatch(served[len(model):]))


def accepted_ids(meta) -> tuple[str, ...]:
    values = meta.get("served_as") if isinstance(meta, dict) else None
    return tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ()


def served_mismatch(art, served: str | None) -> bool:
    """True when a decision naming the pinned hosted artifact ``art`` reports that the
    vendor served another model."""
    if not served or art is None or art.payload != "vendor" or not art.hosted_id:
        return False
    if not is_pinned(art.hosted_id, art.meta):
        return False
    return not served_matches(art.hosted_id, served, accepted_ids(art.meta))


__all__ = ["accepted_ids", "is_pinned", "served_matches", "served_mismatch"]
