"""The `make demo` scenario: Acme support's ledger over eight months, with planted incidents.

``build(path)`` writes the ledger; ``report`` runs ``modelward check`` and ``modelward audit``
on it; ``catalogue.EPISODES`` lists what the story contains.
"""

from .scenario import BuildResult, build

__all__ = ["BuildResult", "build"]
