"""Content addressing, time and id primitives: the values everything else is keyed by."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelward import digest as dg
from modelward.errors import ValidationError
from modelward.ids import is_uuid, uuid7
from modelward.timefmt import MAX_US, MIN_US, iso, parse_duration, parse_time


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- digests -----------------------------------------------------------------------------
def test_of_bytes_is_sha256_with_prefix():
    assert dg.of_bytes(b"abc") == sha(b"abc")
    assert dg.is_digest(dg.of_bytes(b""))


@pytest.mark.parametrize("value", [
    "sha256:" + "a" * 63, "sha256:" + "A" * 64, "sha1:" + "a" * 64, "a" * 64,
    "sha256:" + "g" * 64, " sha256:" + "a" * 64, 5, None, b"sha256:" + b"a" * 64,
])
def test_check_digest_refuses_non_digests(value):
    assert not dg.is_digest(value)
    with pytest.raises(ValidationError) as exc:
        dg.check_digest(value, "model_digest")
    assert exc.value.field == "model_digest"


def test_canonical_text_drops_bom_and_folds_crlf():
    assert dg.canonical_text("\ufeffhello\r\nworld\r\n") == b"hello\nworld\n"
    assert dg.of_text("\ufeffa\r\nb") == dg.of_text("a\nb") == sha(b"a\nb")
    # only a leading BOM is dropped; a lone CR is content
    assert dg.canonical_text("a\ufeff\rb") == "a\ufeff\rb".encode()


def test_canonical_json_sorts_keys_without_whitespace():
    a = dg.canonical_json({"b": [1, 2], "a": {"y": 1, "x": "é"}})
    assert a == '{"a":{"x":"é","y":1},"b":[1,2]}'.encode()
    assert dg.of_json({"x": 1, "y": 2}) == dg.of_json({"y": 2, "x": 1})


def test_directory_manifest_is_sorted_and_order_independent(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for root, order in ((one, ["b.bin", "a/z.txt", "a/b.txt"]), (two, ["a/b.txt", "b.bin", "a/z.txt"])):
        for rel in order:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(rel.encode())
    entries = dg.walk_directory(one)
    assert [e.path for e in entries] == ["a/b.txt", "a/z.txt", "b.bin"]
    manifest = dg.manifest_bytes(entries)
    assert manifest == ("".join(f"{p}\t{sha(p.encode())}\n" for p in ["a/b.txt", "a/z.txt", "b.bin"])).encode()
    assert manifest == dg.manifest_bytes(dg.walk_directory(two))
    assert dg.parse_manifest(manifest) == [(e.path, e.digest) for e in entries]


def test_directory_skips_symlinks_leaving_the_tree(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    root = tmp_path / "d"
    root.mkdir()
    (root / "f.txt").write_text("f")
    (root / "link").symlink_to(outside)
    (root / "inner").symlink_to(root / "f.txt")
    assert [e.path for e in dg.walk_directory(root)] == ["f.txt", "inner"]


def test_canonical_payload_by_kind(tmp_path):
    p = tmp_path / "p.txt"
    p.write_bytes(b"\xef\xbb\xbfHi {name}\r\n")
    assert dg.canonical_payload("prompt", p) == b"Hi {name}\n"
    assert dg.canonical_payload("model", p) == p.read_bytes()  # other kinds: the bytes
    c = tmp_path / "c.json"
    c.write_bytes(b'{ "b": 1,\n  "a": [true, null] }')
    assert dg.canonical_payload("config", c) == b'{"a":[true,null],"b":1}'
    y = tmp_path / "c.yaml"
    y.write_bytes(b"b: 1\n")
    assert dg.canonical_payload("config", y) == b"b: 1\n"
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"{nope")
    with pytest.raises(ValidationError, match="not valid JSON") as exc:
        dg.canonical_payload("config", bad)
    assert exc.value.field == "path"
    latin = tmp_path / "l.txt"
    latin.write_bytes(b"caf\xe9")
    with pytest.raises(ValidationError, match="not UTF-8") as exc:
        dg.canonical_payload("prompt", latin)
    assert exc.value.field == "path"


# --- time ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("2026-03-01T12:00:00Z", 1772366400000000),
    ("2026-03-01T12:00:00z", 1772366400000000),
    ("2026-03-01T14:00:00+02:00", 1772366400000000),
    ("2026-03-01T12:00:00.000001Z", 1772366400000001),
    (" 2026-03-01T12:00:00Z ", 1772366400000000),
])
def test_parse_time_iso(text, expected):
    assert parse_time(text) == expected


def test_parse_time_datetimes_and_ints():
    when = datetime(2026, 3, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert parse_time(when) == 1772366400000000
    assert parse_time(1772366400000000) == 1772366400000000


@pytest.mark.parametrize("value,message", [
    ("2026-03-01T12:00:00", "has no UTC offset"),
    (datetime(2026, 3, 1), "has no UTC offset"),
    ("yesterday", "not an ISO 8601 timestamp"),
    (True, "expected an ISO 8601 timestamp"),
    (1.5, "expected an ISO 8601 timestamp, got float"),
    (2**63, "outside years 1-9999"),
    (MAX_US + 1, "outside years 1-9999"),
])
def test_parse_time_refuses(value, message):
    with pytest.raises(ValidationError, match=message) as exc:
        parse_time(value, field="since")
    assert exc.value.field == "since"


def test_iso_round_trips_across_the_whole_range():
    for us in (MIN_US, -1, 0, 1, 1772366400000000, 1772366400123456, MAX_US):
        assert parse_time(iso(us)) == us
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(1) == "1970-01-01T00:00:00.000001Z"
    assert iso(MIN_US) == "0001-01-01T00:00:00Z"
    assert iso(None) is None
    now = datetime.now(UTC).replace(microsecond=0)
    assert iso(parse_time(now)) == now.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("text,us", [("50ms", 50_000), ("1.5s", 1_500_000), ("30m", 1_800_000_000),
                                     ("6h", 21_600_000_000), ("400d", 34_560_000_000_000),
                                     ("2w", 1_209_600_000_000), ("7us", 7), (" 5 s ", 5_000_000)])
def test_parse_duration(text, us):
    assert parse_duration(text) == us


@pytest.mark.parametrize("bad", ["5", "5 years", "-5s", "", "ms", True, 1.5])
def test_parse_duration_refuses(bad):
    with pytest.raises(ValidationError, match="not a duration") as exc:
        parse_duration(bad, field="retention")
    assert exc.value.field == "retention"


# --- ids ---------------------------------------------------------------------------------
def test_uuid7_is_versioned_unique_and_monotonic():
    ids = [uuid7() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # the in-process counter keeps them ordered within a millisecond
    for i in ids[:50]:
        assert is_uuid(i) and i[14] == "7" and i[19] in "89ab"
    assert not is_uuid(ids[0].upper()) and not is_uuid(ids[0][:-1]) and not is_uuid(None)
