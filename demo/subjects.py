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


def unscored_prompt(episode: str, alias: str, prompt: str, model: str) -> Expected:
    """MW301 names the prompt's alias; one finding per (prompt digest, model digest)."""
    return Expected("MW301", alias, episode, (("prompt_digest", prompt), ("model_digest", model)))


def unreviewed_move(episode: str, alias: str, problem: str) -> Expected:
    """MW206 names the alias; one finding per alias event, ``problems`` all it found."""
    return Expected("MW206", alias, episode, (("problems", [problem]),))


def stale_evidence(episode: str, alias: str, problem: str) -> Expected:
    """MW202 names the alias; one finding per (alias, digest), ``problem`` the first gate."""
    return Expected("MW202", alias, episode, (("problem", problem),))


def unrepresentative(episode: str, name: str, **evidence: object) -> Expected:
    """MW303 names the eval set; one finding per (eval set, segment) or (eval set, source)."""
    return Expected("MW303", name, episode, tuple(sorted(evidence.items())))


def by_digest(code: str, episode: str, digest: str, **evidence: object) -> Expected:
    """MW204, MW205, MW304 (dataset) name the artifact's digest."""
    return Expected(code, digest, episode, tuple(sorted(evidence.items())))


def by_subject(code: str, episode: str, subject: str, **evidence: object) -> Expected:
    """Any guard whose subject is an alias or a name, told apart by evidence values."""
    return Expected(code, subject, episode, tuple(sorted(evidence.items())))


def label(name: str, version: str, key: str) -> str:
    """How a guard names an artifact, ``name@version (sha256:<12 hex>…)``, for the artifact
    an after-write hook registers as ``world.digests[key]`` (filled in by Expected.resolved)."""
    return f"{name}@{version} ({{{key}:.19}}…)"
