"""Production traffic with segments, feedback and eval sets for the feedback and
representativeness tests (and MW303/MW304), built through the real ledger API."""

from __future__ import annotations

import orjson

from modelward.ledger import artifacts, decisions
from modelward.ledger import decisions as ledger_decisions
from modelward.ledger import feedback as ledger_feedback
from modelward.timefmt import parse_time

MIN = 60_000_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = parse_time("2026-03-01T12:00:00Z")
NOW = T0 + 2 * DAY  # the same moment tests/guards/builders.py runs guards at

# 1,000 decisions: tier free 50% / pro 20% / enterprise 30%; topic billing 50% / api 30% /
# sso 20%. Enterprise rarely clicks thumbs up.
CELLS = {("free", "billing"): 300, ("free", "api"): 200, ("pro", "billing"): 100,
         ("pro", "api"): 100, ("enterprise", "sso"): 200, ("enterprise", "billing"): 100}


def record(store, decs: list[dict], block: int = 500) -> list[str]:
    """Append decisions in time order, ``block`` per chain block; returns their ids."""
    pairs = [decisions.normalize(d) for d in sorted(decs, key=lambda d: d["at"])]
    for i in range(0, len(pairs), block):
        part = pairs[i:i + block]
        decisions.append(store, [r for r, _ in part], [p for _, p in part if p is not None])
    return [r[0] for r, _ in pairs]


def traffic(store, cells: dict = CELLS, *, start: int = T0, step: int = MIN, text: bool = True
            ) -> dict[tuple, list[str]]:
    """Decisions per (tier, topic) cell, interleaved in time from ``start``; ids by cell.
    Each decision's input text is unique: ``<tier> <topic> question <n>``."""
    order = []
    left = dict(cells)
    while any(left.values()):  # round-robin, so every cell spans the whole period
        for cell in cells:
            if left[cell]:
                order.append((cell, cells[cell] - left[cell]))
                left[cell] -= 1
    decs = []
    for i, ((tier, topic), n) in enumerate(order):
        d = dict(at=start + i * step, alias="chat/v1", subject=f"{tier}-{n % 40}",
                 segments={"tier": tier, "topic": topic})
        if text:
            d.update(input_text=f"{tier} {topic} question {n}", output_text=f"answer {n}")
        decs.append(d)
    ids = record(store, decs)
    out: dict[tuple, list[str]] = {c: [] for c in cells}
    for (cell, _n), did in zip(order, ids, strict=True):
        out[cell].append(did)
    return out


def jsonl(items: list[dict]) -> bytes:
    return b"".join(orjson.dumps(it) + b"\n" for it in items)


def register_evalset(store, items: list[dict], name: str, **kw) -> str:
    return artifacts.register_bytes(store, "evalset", jsonl(items), name=name, **kw
                                    ).artifact.digest


def thumbs_up_items(ids: dict[tuple, list[str]]) -> list[dict]:
    """40 items: 36 curated from thumbs-up clicks (linked to their decisions: 28 free,
    6 pro, 2 enterprise, all billing) and 4 hand-written free/api items."""
    linked = (ids[("free", "billing")][:28] + ids[("pro", "billing")][:6]
              + ids[("enterprise", "billing")][:2])
    items = [{"id": f"up-{i}", "input": f"thumbs-up question {i}", "source": "thumbs_up",
              "decision_id": did} for i, did in enumerate(linked)]
    items += [{"id": f"hand-{i}", "input": f"hand-written {i}", "source": "curated",
               "segments": {"tier": "free", "topic": "api"}} for i in range(4)]
    return items


def fid(n: int) -> str:
    return f"01890000-0000-7000-8000-0000000000{n:02d}"


def feedback_scenario(store) -> list[str]:
    """12 decisions and 12 feedback events, two of which the default policy admits."""
    texts = ["question zero", "question one", "q2", "q3", "q4", "q5", "q6", "Question  ZERO",
             "q8", "q9", None, "secret question"]
    decs = []
    for i, text in enumerate(texts):
        d = dict(at=T0 + i * MIN, subject="gone" if i == 11 else f"s{i}",
                 segments={"tier": "pro"}, output_text=f"answer {i}")
        if text is not None:
            d["input_text"] = text
        decs.append(d)
    d = record(store, decs)
    ledger_decisions.erase_subject(store, "gone")
    prod = dict(surface="production", author_kind="customer")
    events = [
        dict(decision_id=d[0], intent="incorrect", correction="Zero is 0.", rating=-1, **prod),
        dict(decision_id=d[1], intent="unsafe", correction="I can't share that.", **prod),
        dict(decision_id=d[2], intent="style", correction="shorter please", **prod),
        dict(decision_id=d[3], intent="test", surface="internal", author_kind="employee"),
        dict(decision_id=d[4], intent="incorrect", correction="x", surface="production",
             author_kind="employee"),
        dict(decision_id=d[5], intent="incorrect", correction="x", surface="staging",
             author_kind="customer"),
        dict(decision_id=d[6], intent="incorrect", **prod),
        dict(decision_id=d[7], intent="incorrect", correction="Zero is nothing.", **prod),
        dict(decision_id=d[10], intent="incorrect", correction="x", **prod),
        dict(decision_id=d[11], intent="incorrect", correction="x", **prod),
        dict(decision_id=d[8], intent="unhelpful", correction="x", **prod),
        dict(decision_id=d[9], intent="incorrect", correction="   ", **prod),
    ]
    rows = [ledger_feedback.normalize(dict(e, id=fid(n), at=T0 + HOUR + n * MIN))
            for n, e in enumerate(events, start=1)]
    with store.write() as conn:
        ledger_feedback.add(conn, rows)
    return d
