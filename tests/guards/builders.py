"""Ledgers for guard tests, built through the real ledger API (no fakes).

:func:`healthy` builds the realistic control: a small fleet whose aliases move, roll back
and change prompts, a hosted model whose vendor snapshot change is acknowledged by a
registration, old decisions past retention whose payload was collected, several chain
blocks. Every guard must find nothing in it."""

from __future__ import annotations

from pathlib import Path

from modelward.ledger import aliases, artifacts, decisions
from modelward.timefmt import parse_time

MIN = 60_000_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = parse_time("2026-03-01T12:00:00Z")
NOW = T0 + 2 * DAY  # the "now" guards run at in these tests


def put(store, kind: str, content: bytes, name: str, version: str | None = None, **kw) -> str:
    return artifacts.register_bytes(store, kind, content, name=name, version=version,
                                    **kw).artifact.digest


def put_hosted(store, hosted_id: str, name: str, **kw) -> str:
    return artifacts.register_hosted(store, hosted_id, name=name, **kw).artifact.digest


def move(store, alias: str, digest: str, at: int) -> None:
    with store.write() as conn:
        aliases.set_alias(conn, alias, digest, at=at, actor="ops@example.com")


def resolve(store, alias: str, at: int) -> str:
    with store.read() as conn:
        return aliases.resolve_at(conn, alias, at).digest


def record(store, decs: list[dict], block: int = 50) -> list[str]:
    """Append decisions in time order, ``block`` per chain block; returns their ids."""
    pairs = [decisions.normalize(d) for d in sorted(decs, key=lambda d: d["at"])]
    for i in range(0, len(pairs), block):
        part = pairs[i:i + block]
        decisions.append(store, [r for r, _ in part], [p for _, p in part if p is not None])
    return [r[0] for r, _ in pairs]


def healthy(store, tmp_path: Path) -> dict:
    """The realistic clean ledger; returns the digests by role."""
    weights = tmp_path / "chat-v4"
    weights.mkdir()
    (weights / "config.json").write_text('{"layers": 4}')
    (weights / "model.safetensors").write_bytes(b"\x00weights-v4" * 100)
    old = put(store, "model", b"weights-v1", "chat", "v1", at=T0 - 500 * DAY)
    v3 = put(store, "model", b"weights-v3", "chat", "v3", owner="ml@example.com")
    v4 = artifacts.register_path(store, "model", weights, name="chat", version="v4").artifact.digest
    p37 = put(store, "prompt", b"You are a support agent. v37", "support", "37")
    p38 = put(store, "prompt", b"You are a support agent. v38", "support", "38")
    emb = put(store, "embedder", b"embedder-e5", "search-embedder", "1")
    floating = put_hosted(store, "openai:gpt-4o", "gpt-4o", at=T0 - DAY)
    put_hosted(store, "openai:gpt-4o-2024-08-06", "gpt-4o", version="2024-08-06",
               retires_at=NOW + 100 * DAY, at=T0 - DAY)

    move(store, "chat/v1", old, T0 - 500 * DAY)
    move(store, "chat/v1", v3, T0)
    move(store, "prompt/support@production", p37, T0)
    move(store, "embed/search", emb, T0)
    move(store, "chat/hosted", floating, T0)
    move(store, "chat/v1", v4, T0 + 2 * HOUR)
    move(store, "prompt/support@production", p38, T0 + 3 * HOUR)
    move(store, "chat/v1", v3, T0 + 5 * HOUR)  # rollback
    # the team registers the vendor's new snapshot as it rolls out
    put_hosted(store, "openai:gpt-4o-2024-11-20", "gpt-4o", version="2024-11-20",
               at=T0 + 4 * HOUR - MIN)

    decs = []
    # an old model, rotated away and collected long after its decisions left retention
    decs += [dict(at=T0 - 450 * DAY + i * HOUR, alias="chat/v1", model_digest=old,
                  process="web-1") for i in range(5)]
    # three serving processes that re-resolve within minutes (inside the 30m grace)
    for process, lag in (("web-1", 0), ("web-2", 5 * MIN), ("worker-1", 20 * MIN)):
        for step in range(48):
            at = T0 + step * 10 * MIN + 7_000_000
            seen = max(T0, at - lag)
            decs.append(dict(at=at, alias="chat/v1", process=process,
                             model_digest=resolve(store, "chat/v1", seen),
                             prompt_digest=resolve(store, "prompt/support@production", seen),
                             embedder_digest=emb, subject=f"u{step % 7}",
                             input_text=f"question {step}", output_text=f"answer {step}",
                             segments={"plan": "pro" if step % 3 else "free"},
                             gate={"threshold": 0.4, "candidates": 20, "passed": 7}))
    # a hosted model whose vendor snapshot changed right after the team registered it
    for step in range(48):
        at = T0 + step * 10 * MIN + 3_000_000
        new = at >= T0 + 4 * HOUR
        decs.append(dict(at=at, alias="chat/hosted", process="api-1", model_digest=floating,
                         vendor_model_id="gpt-4o-2024-11-20" if new else "gpt-4o-2024-08-06",
                         vendor_fingerprint="fp_b7" if new else "fp_a1"))
    # an eval worker asking for the prompt alias only, resolving per request
    decs += [dict(at=T0 + i * 20 * MIN + 11_000_000, alias="prompt/support@production",
                  process="eval-1",
                  prompt_digest=resolve(store, "prompt/support@production",
                                        T0 + i * 20 * MIN + 11_000_000))
             for i in range(24)]
    # a batch job that records digests and no alias
    decs += [dict(at=T0 + i * HOUR, process="batch", model_digest=v4, embedder_digest=emb)
             for i in range(6)]
    record(store, decs)
    # retention collected the old model's payload (its decisions are past the window)
    store.blobs.delete(old)
    with store.write() as conn:
        artifacts.mark_payload_deleted(conn, old, T0 - 10 * DAY)
    return {"old": old, "v3": v3, "v4": v4, "p37": p37, "p38": p38, "emb": emb,
            "floating": floating}
