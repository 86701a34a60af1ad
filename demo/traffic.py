"""Production traffic: who asked what, when, and which digests each serving process used.

Three streams: the chat assistant (``chat/v1`` + the support prompt + retrieval), a triage
classifier in front of it (hosted Claude) and a summariser behind it (hosted gpt-4o-mini).
Each serving process picks up an alias move after its own lag (:meth:`World.lag`), which is
how a stale pod is planted; hosted decisions carry whatever the vendor reported at the time.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from modelward.digest import of_text

from . import texts
from .world import (
    CHAT_ALIAS,
    CHAT_PODS,
    DAY,
    HOUR,
    MINUTE,
    PROMPT_ALIAS,
    SUMMARY_ALIAS,
    SUMMARY_WORKERS,
    TRIAGE_ALIAS,
    TRIAGE_PODS,
    World,
    decision_id,
)

CHAT_DECISIONS = 48_000
TRIAGE_SHARE = 0.30
SUMMARY_SHARE = 0.25
USERS = 4_000
TIERS = (("free", 0.55, 1.0), ("pro", 0.33, 1.6), ("enterprise", 0.12, 3.0))  # share, activity
TOPIC_MIX = {"free": (0.15, 0.25, 0.40, 0.20), "pro": (0.25, 0.30, 0.30, 0.15),
             "enterprise": (0.20, 0.40, 0.30, 0.10)}
CHANNELS, CHANNEL_WEIGHTS = ("web", "in-app", "email"), (0.6, 0.3, 0.1)
GATE_PASS_RATE = {"billing": 0.34, "bug": 0.22, "howto": 0.51, "account": 0.30}
# Hour-of-day weights (UTC): Europe's morning, America's afternoon, a quiet night.
HOURLY = (2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 10, 10, 11, 12, 12, 11, 10, 8, 7, 6, 5, 4, 3)
# Users who opted in to conversation review (their text is kept); enterprise customers opt
# in through their admin for QA, less often. Without some enterprise text no sample of the
# traffic (``modelward evalset rebuild``) could represent the enterprise tier.
KEEP_TEXT_SHARE = {"free": 0.15, "pro": 0.15, "enterprise": 0.08}


@dataclass(frozen=True)
class User:
    subject: str
    tier: str
    keeps_text: bool


def users(world: World) -> tuple[list[User], list[float]]:
    rng = world.rng("users")
    out, weights = [], []
    for _ in range(USERS):
        tier, activity = rng.choices([(t, a) for t, _s, a in TIERS],
                                     weights=[s for _t, s, _a in TIERS])[0]
        out.append(User(f"u_{rng.getrandbits(48):012x}", tier,
                        rng.random() < KEEP_TEXT_SHARE[tier]))
        weights.append(activity * rng.lognormvariate(0, 0.8))
    return out, weights


def arrivals(world: World, n: int) -> list[int]:
    """``n`` sorted times over the span: traffic grows ~2x, dips at weekends, follows the clock."""
    rng = world.rng("arrivals")
    first_day = world.start // DAY + 1
    days = list(range(first_day, world.now // DAY + 1))
    day_w = [(0.7 + 0.6 * i / len(days)) * (0.45 if (d + 3) % 7 >= 5 else 1.0)
             for i, d in enumerate(days)]
    picked_days = rng.choices(days, weights=day_w, k=n)
    hours = rng.choices(range(24), weights=HOURLY, k=n)
    times = [d * DAY + h * HOUR + rng.randrange(HOUR)
             for d, h in zip(picked_days, hours, strict=True)]
    # today's traffic stops at now: a time still ahead happened at that hour yesterday
    return sorted(t - DAY if t >= world.now - MINUTE else t for t in times)


class Fleet:
    """Which digest each process used for an alias at any moment, given its pickup lags."""

    def __init__(self, world: World, aliases_processes: dict[str, tuple[str, ...]]) -> None:
        self._steps: dict[tuple[str, str], tuple[list[int], list[str]]] = {}
        for alias, processes in aliases_processes.items():
            moves = world.moves_of(alias)
            for process in processes:
                applied = sorted((m.at + world.lag(process, m), m.at, m.digest) for m in moves)
                times, digests, newest = [], [], -1
                for when, moved_at, digest in applied:
                    # a late pickup of an older move never overrides a newer one already applied
                    if moved_at > newest:
                        newest = moved_at
                        times.append(when)
                        digests.append(digest)
                self._steps[(alias, process)] = (times, digests)

    def digest(self, alias: str, process: str, at: int) -> str:
        times, digests = self._steps[(alias, process)]
        i = bisect.bisect_right(times, at) - 1
        if i < 0:
            raise ValueError(f"{process} served {alias} before it existed")
        return digests[i]


def _gate(topic: str, rng) -> dict:
    candidates = rng.randint(24, 40)
    p = GATE_PASS_RATE[topic]
    passed = round(rng.gauss(candidates * p, math.sqrt(candidates * p * (1 - p))))
    return {"threshold": 0.4, "candidates": candidates, "passed": min(candidates, max(0, passed))}


def generate(world: World) -> list[dict]:
    """Every decision of the scenario as recorder-style dicts, in time order."""
    fleet = Fleet(world, {CHAT_ALIAS: CHAT_PODS, PROMPT_ALIAS: CHAT_PODS,
                          TRIAGE_ALIAS: TRIAGE_PODS, SUMMARY_ALIAS: SUMMARY_WORKERS})
    people, weights = users(world)
    rng = world.rng("traffic")
    d = world.digests
    out: list[dict] = []
    chosen = rng.choices(people, weights=weights, k=CHAT_DECISIONS)
    for at, user in zip(arrivals(world, CHAT_DECISIONS), chosen, strict=True):
        topic = rng.choices(texts.TOPICS, weights=TOPIC_MIX[user.tier])[0]
        segments = {"tier": user.tier, "topic": topic,
                    "channel": rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]}
        question, answer = texts.conversation(topic, rng)
        pod = rng.choice(CHAT_PODS)
        chat = {
            "id": decision_id(at, rng), "at": at, "alias": CHAT_ALIAS, "process": pod,
            "model_digest": fleet.digest(CHAT_ALIAS, pod, at),
            "prompt_digest": fleet.digest(PROMPT_ALIAS, pod, at),
            "embedder_digest": d["embedder"], "reranker_digest": d["reranker"],
            "config_digest": d["retrieval-config"], "subject": user.subject,
            "segments": segments, "gate": _gate(topic, rng),
        }
        _texts(chat, question, answer, user.keeps_text)
        out.append(chat)
        if rng.random() < TRIAGE_SHARE:
            t_at = at - rng.randint(2_000_000, 20_000_000)
            pod_t = rng.choice(TRIAGE_PODS)
            report = world.vendor_report(TRIAGE_ALIAS, t_at)
            out.append({
                "id": decision_id(t_at, rng), "at": t_at, "alias": TRIAGE_ALIAS,
                "process": pod_t, "model_digest": fleet.digest(TRIAGE_ALIAS, pod_t, t_at),
                "vendor_model_id": report.model_id, "vendor_fingerprint": report.fingerprint,
                "subject": user.subject, "segments": {"tier": user.tier, "topic": topic},
                "input_digest": of_text(question), "output_digest": of_text(topic),
            })
        s_at = at + rng.randint(5 * MINUTE, 40 * MINUTE)
        if rng.random() < SUMMARY_SHARE and s_at < world.now - MINUTE:
            worker = rng.choice(SUMMARY_WORKERS)
            report = world.vendor_report(SUMMARY_ALIAS, s_at)
            summary = {
                "id": decision_id(s_at, rng), "at": s_at, "alias": SUMMARY_ALIAS,
                "process": worker, "model_digest": fleet.digest(SUMMARY_ALIAS, worker, s_at),
                "prompt_digest": d["summary-prompt"], "vendor_model_id": report.model_id,
                "vendor_fingerprint": report.fingerprint, "subject": user.subject,
                "segments": {"tier": user.tier, "topic": topic},
            }
            _texts(summary, f"Customer: {question}\nAssistant: {answer}",
                   texts.summary(topic, question, answer), user.keeps_text)
            out.append(summary)
    out.sort(key=lambda r: (r["at"], r["id"]))
    return out


def _texts(decision: dict, input_text: str, output_text: str, keep: bool) -> None:
    """Digests always; the raw text only for subjects who opted in (it stays erasable)."""
    if keep:
        decision["input_text"], decision["output_text"] = input_text, output_text
    else:
        decision["input_digest"], decision["output_digest"] = of_text(input_text), \
            of_text(output_text)
