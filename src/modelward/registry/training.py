"""What was trained, and from what: the one definition of a fine-tune and of a trained
artifact, read from an artifact's registration.

* A **fine-tune** is an ``adapter``, or an artifact with a parent of relation ``base``
  (its base). An adapter registered without one has no known base.
* A **trained artifact** is a fine-tune, or one registered with ``"trained": true`` in its
  metadata (what ``modelward closure capture`` registers).

The promotion gates (``safety``, ``closure``), MW204, MW205 and ``modelward safety``
all ask here, so they cannot disagree about what counts.
"""

from __future__ import annotations

from ..ledger.artifacts import Artifact

# The artifact kinds a training produces (``modelward closure capture --kind``).
TRAINED_KINDS = ("model", "adapter")


def base_of(art: Artifact) -> str | None:
    """The digest ``art`` was tuned from (its parent of relation ``base``), if recorded."""
    return next((p for p, rel in art.parents if rel == "base"), None)


def fine_tune(art: Artifact) -> str | None:
    """Why ``art`` is a fine-tune: ``"adapter"`` or ``"fine-tune"`` (it has a base), or
    None when it is not one."""
    if art.kind == "adapter":
        return "adapter"
    return "fine-tune" if base_of(art) else None


def trained(art: Artifact) -> str | None:
    """Why ``art`` is a trained artifact: its :func:`fine_tune` reason, or ``"marked"``
    (``"trained": true`` in its metadata); None when it is not one."""
    return fine_tune(art) or ("marked" if art.meta.get("trained") is True else None)
