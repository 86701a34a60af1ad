"""What a finding is about, read from its evidence by one table: the ids it names
(decisions, eval runs, promotions, aliases, experiments, digests), how many decisions it
affects and the first and last time it was seen.

Guards already put these in their evidence under names of their own (``first_decision``,
``run``, ``request``, ``decisions``, ``first_seen``…); the table below says, per evidence
key and per guard where a key means something else there, what each one is. The dashboard
links every id from it and ranks by the counts; nothing parses a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ..errors import ValidationError
from ..ids import is_uuid
from ..timefmt import parse_time
from .finding import Finding

KINDS = ("decision", "eval_run", "promotion", "alias", "experiment", "fingerprint_run",
         "digest")

# evidence key (a dotted path into nested dicts; lists are read item by item) -> kind
COMMON: dict[str, str] = {
    "alias": "alias", "prompt_aliases": "alias", "model_aliases": "alias",
    "first_decision": "decision", "last_decision": "decision", "example": "decision",
    "decision_ids": "decision", "last_before.id": "decision", "first_after.id": "decision",
    "request": "promotion",
    "evidence_run": "eval_run", "latest_prompt_eval.run": "eval_run",
    "latest_model_eval.run": "eval_run", "unfinished_runs.run": "eval_run",
    "experiment": "experiment",
    "digest": "digest", "stale_digest": "digest", "moved_to": "digest",
    "prompt_digest": "digest", "model_digest": "digest", "previous_digest": "digest",
    "evalset_digest": "digest", "source_digest": "digest",
}
# what a key means in one guard's evidence when it differs (or exists only there)
BY_CODE: dict[str, dict[str, str]] = {
    "MW101": {"examples": "decision"},
    "MW202": {"run": "eval_run"},
    "MW302": {"run_id": "eval_run"},
    "MW403": {"other": "experiment"},
    "MW501": {"run_id": "fingerprint_run", "previous_run_id": "fingerprint_run"},
}
# the evidence count of affected decisions, first found wins
DECISION_COUNTS: dict[str, tuple[str, ...]] = {
    "*": ("decisions", "decisions_new"),
    "MW103": ("decision_count",),  # there "decisions" is every decision verified
}
FIRST_SEEN = ("first_seen", "changed_at", "at", "moved_at")
LAST_SEEN = ("last_seen", "at", "changed_at", "moved_at")


@dataclass(frozen=True)
class Facts:
    decisions: int | None
    aliases: int | None
    first_seen: int | None
    last_seen: int | None
    refs: tuple[tuple[str, str], ...]  # (kind, id), in evidence order, without repeats


def facts(f: Finding) -> Facts:
    return facts_of(f.code, f.evidence)


def facts_of(code: str, evidence: dict) -> Facts:
    refs: dict[tuple[str, str], None] = {}
    for key, kind in {**COMMON, **BY_CODE.get(code, {})}.items():
        for value in _values(evidence, key.split(".")):
            if kind == "decision" and not is_uuid(value):
                continue
            if isinstance(value, str) and value:
                refs[(kind, value)] = None
            elif isinstance(value, int) and not isinstance(value, bool):
                refs[(kind, str(value))] = None
    aliases = {v for k, v in refs if k == "alias"}
    count = next((evidence[k] for k in DECISION_COUNTS.get(code, DECISION_COUNTS["*"])
                  if _is_count(evidence.get(k))), None)
    if count is None:
        decisions = {v for k, v in refs if k == "decision"}
        count = len(decisions) or None
    return Facts(count, len(aliases) or None, _time(evidence, FIRST_SEEN),
                 _time(evidence, LAST_SEEN), tuple(refs))


def _values(node, path: list[str]):
    if isinstance(node, list):
        for item in node:
            yield from _values(item, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _values(node[path[0]], path[1:])


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _time(evidence: dict, keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = evidence.get(key)
        if isinstance(value, str) and value:
            try:
                return parse_time(value, field=key)
            except ValidationError:
                continue
    return None


def dashboard_path(kind: str, value: str) -> str | None:
    """Where the dashboard shows the thing an id of ``kind`` names (None: no page for it);
    the findings page links and the alerts' evidence links both come from here."""
    if kind == "decision" and is_uuid(value):
        return f"/decisions/{value}"
    if kind == "eval_run":
        return f"/evals/{quote(value, safe='')}"
    if kind == "promotion":
        return f"/promotions/{quote(value, safe='')}"
    if kind == "alias":
        return "/aliases?" + urlencode({"alias": value}, safe="/@:+")
    if kind == "experiment":
        return f"/experiments/{quote(value, safe='')}"
    if kind == "fingerprint_run":
        return "/fingerprints"
    return None
