"""The episodes of the story: planted incidents, and the clean controls around them.

Each episode is one function marked with :func:`~demo.episodes.episode`. It edits the :class:`World`
plan before traffic is generated (register artifacts, plan alias moves, override a pod's
pickup lag, change what a vendor reports) or queues a hook that runs after the decisions are
written, and returns the findings it plants. A control returns none: whatever it exercises
must stay silent. To extend the demo, add a function here (or in a new module listed in
:mod:`demo.catalogue`); the test picks it up.
"""

from __future__ import annotations

from modelward.ledger import artifacts as ledger_artifacts

from . import artifacts, subjects
from .episodes import episode
from .world import (
    CHAT_ALIAS,
    CHAT_PODS,
    HOUR,
    MINUTE,
    PROMPT_ALIAS,
    SUMMARY_ALIAS,
    Expected,
    VendorReport,
    World,
)

ROLLBACK_AFTER = 6 * HOUR


@episode("bad-release-rollback", "control",
         "chat/v1 -> v1.3 is rolled back to v1.2 six hours later, then forward to v1.3.1")
def bad_release_rollback(world: World) -> list[Expected]:
    """A rollback makes the previous digest correct again: MW105 must not flag the pods
    that went back to v1.2, and audits inside the six hours must name v1.3."""
    bad = world.workday(75, "10:00")
    artifacts.checkpoint(world, "v1.3", step=9500, at=bad - 41 * HOUR, owner=artifacts.ML_ENG,
                         parent="chat-v1.2", notes="adds this quarter's refund-policy tickets")
    world.move(CHAT_ALIAS, "chat-v1.3", bad, "v1.3: +4.1 points on the support eval",
               artifacts.ML_ENG)
    world.move(CHAT_ALIAS, "chat-v1.2", bad + ROLLBACK_AFTER,
               "INC-2291: v1.3 quotes the old refund policy; rolling back", artifacts.PLATFORM,
               label="chat/v1:rollback")
    fixed = world.workday(68, "11:30")
    artifacts.checkpoint(world, "v1.3.1", step=9600, at=fixed - 23 * HOUR,
                         owner=artifacts.ML_ENG, parent="chat-v1.3",
                         notes="v1.3 retrained without the superseded refund-policy tickets")
    world.move(CHAT_ALIAS, "chat-v1.3.1", fixed,
               "v1.3.1: INC-2291 fixed, refund answers re-checked", artifacts.ML_LEAD)
    return []


@episode("prompt-rollouts", "control",
         "prompt/support@production v1 -> v2 -> v3, picked up by every pod within minutes")
def prompt_rollouts(world: World) -> list[Expected]:
    """Pods name the old prompt for a few minutes after each move: inside the grace."""
    for version, days_ago, clock, reason in (
            ("v2", 170, "13:00", "cite the help-centre article; never promise refunds"),
            ("v3", 40, "10:15", "shorter answers; hand upset customers to an agent")):
        at = world.workday(days_ago, clock)
        artifacts.support_prompt(world, version, at=at - 26 * HOUR)
        world.move(PROMPT_ALIAS, f"prompt-{version}", at, reason, artifacts.PROMPT_OWNER)
    return []


STALE_POD = CHAT_PODS[0]  # pod-chat-7f9c:1
STALE_FOR = 7 * HOUR + 40 * MINUTE


@episode("stale-pod", "incident",
         "pod-chat-7f9c kept serving v1.1 for 7h40m after chat/v1 moved to v1.2")
def stale_pod(world: World) -> list[Expected]:
    """The pod missed the reload signal and served v1.1 until it was restarted."""
    move = world.move_labelled("chat/v1:chat-v1.2")
    world.lag_overrides[(STALE_POD, move.label)] = STALE_FOR
    return [subjects.stale_fleet("stale-pod", CHAT_ALIAS, STALE_POD, world.digests["chat-v1.1"])]


@episode("silent-vendor-swap", "incident",
         "openai:gpt-4o-mini started reporting another model id, with no registry event")
def silent_vendor_swap(world: World) -> list[Expected]:
    """The vendor moved the floating name to a new snapshot one night; nobody registered it."""
    before = world.vendor_reports[SUMMARY_ALIAS][-1]
    world.vendor_reports[SUMMARY_ALIAS].append(VendorReport(
        world.day(96, "02:40"), "gpt-4o-mini-2025-01-31", "fp_b8bc95a0ac"))
    return [subjects.vendor_substitution("silent-vendor-swap", "openai:gpt-4o-mini",
                                         before.model_id, "gpt-4o-mini-2025-01-31")]


@episode("deleted-checkpoint", "incident",
         "a bucket clean-up deleted checkpoint v1.1's weights while decisions still name it")
def deleted_checkpoint(world: World) -> list[Expected]:
    """An old-checkpoint clean-up deleted v1.1 from the blob store behind modelward's back
    (not through `modelward gc`, which keeps what decisions reference)."""
    digest = world.digests["chat-v1.1"]
    world.after_write.append(lambda w: _delete_payload(w, digest))
    return [subjects.unretained("deleted-checkpoint", digest, "missing")]


def _delete_payload(world: World, digest: str) -> None:
    """Delete the blobs only this checkpoint holds (its tokenizer is shared with the others)."""
    store = world.store
    with store.read() as conn:
        mine = set(ledger_artifacts.blob_digests(store, ledger_artifacts.get(conn, digest)))
        others = set()
        for art in ledger_artifacts.list_artifacts(conn):
            if art.digest != digest:
                others.update(ledger_artifacts.blob_digests(store, art))
    for blob in sorted(mine - others):
        store.blobs.delete(blob)

