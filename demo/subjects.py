"""The findings each guard reports for a planted incident, as the demo expects to see them.

Kept in one place so that when a guard's subject or evidence changes the demo and its test
follow in one edit. Subjects and evidence keys are those of src/modelward/guards/.
"""

from __future__ import annotations

from .world import Expected


def stale_fleet(episode: str, alias: str, process: str, stale_digest: str) -> Expected:
    """MW105 names the alias; one finding per (alias, process, stale digest)."""
    return Expected("MW105", alias, episode,
                    (("process", process), ("stale_digest", stale_digest)))


def vendor_substitution(episode: str, hosted_id: str, old: str, new: str) -> Expected:
    """MW104 names the hosted id; one finding per (model, old id, new id)."""
    return Expected("MW104", hosted_id, episode,
                    (("field", "vendor_model_id"), ("old", old), ("new", new)))


def unretained(episode: str, digest: str, problem: str) -> Expected:
    """MW102 names the artifact's digest; ``problem`` is missing/corrupt/not-stored/retired."""
    return Expected("MW102", digest, episode, (("problem", problem),))
