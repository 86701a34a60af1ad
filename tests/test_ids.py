"""Client-made ids: UUIDv7 (RFC 9562) strings, time-ordered, monotonic within a process."""

from __future__ import annotations

import threading
import time
import uuid

from modelward.ids import is_uuid, uuid7


def test_uuid7_is_rfc9562_version_7_with_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    text = uuid7()
    after = time.time_ns() // 1_000_000
    assert is_uuid(text)  # lower-case, hyphenated
    parsed = uuid.UUID(text)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_uuid7_sorts_in_the_order_made_even_within_one_millisecond():
    ids = [uuid7() for _ in range(50_000)]  # many share a millisecond
    assert len({uuid.UUID(i).int >> 80 for i in ids}) < len(ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_uuid7_is_monotonic_in_each_thread_and_unique_across_threads():
    made: dict[int, list[str]] = {}

    def work(k: int) -> None:
        made[k] = [uuid7() for _ in range(10_000)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ids in made.values():
        assert ids == sorted(ids)
    every = [i for ids in made.values() for i in ids]
    assert len(set(every)) == len(every)
