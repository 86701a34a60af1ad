"""Assignment: SipHash-2-4 against its reference vectors, the C, pure-Python and numpy paths
against each other, the published test vectors, and the rule's statistical behaviour."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import modelward
from modelward.errors import ValidationError
from modelward.rollout import assignment, siphash
from modelward.rollout.assignment import Experiment, key_of, parse_arms

ROOT = Path(__file__).resolve().parents[2]
REF_KEY = bytes(range(16))
# SipHash-2-4 reference outputs (vectors.h of the reference implementation): key 00..0f,
# message 00 01 … (n-1) for n = 0..7 and 15, as little-endian 64-bit integers.
REFERENCE = {0: 0x726FDB47DD0E0E31, 1: 0x74F839C593DC67FD, 2: 0x0D6C8009D9A94F5A,
             3: 0x85676696D7FB7E2D, 4: 0xCF2794E0277187B7, 5: 0x18765564CD99A68D,
             6: 0xCBC9466E58FEE3CE, 7: 0xAB0200F58B01D137, 15: 0xA129CA6149BE45E5}


def _messages() -> list[str]:
    rnd = random.Random(5)
    out = ["a", "\x00", "ab\x00c", "é" * 9, "日本語のテキスト", "x" * 8, "y" * 7, "z" * 64, "🙂" * 3,
           "1042", "u-1"]
    out += ["".join(chr(rnd.randrange(1, 0x3000)) for _ in range(rnd.randrange(1, 50)))
            for _ in range(400)]
    return out


def test_siphash_matches_the_reference_vectors_in_every_implementation():
    state = siphash.initial_state(REF_KEY)
    messages = [bytes(range(n)) for n in REFERENCE]
    expected = list(REFERENCE.values())
    assert [siphash.siphash24(state, m) for m in messages] == expected
    assert [assignment._c_siphash(REF_KEY, m) for m in messages] == expected
    many = siphash.siphash24_many(state, siphash.Packed.from_bytes(messages))
    assert [int(h) for h in many] == expected


def test_c_pure_python_and_numpy_paths_agree_bit_for_bit(monkeypatch):
    exp = Experiment("t", "salt-1", "a=1,b=2,c=3")
    texts = _messages()
    fast = [exp.hash(t) for t in texts]
    many = exp.hashes(texts)
    assert [int(h) for h in many] == fast
    arms = [exp.assign(t) for t in texts]
    assert list(exp.assign_many(texts)) == arms
    assert list(modelward.assign_many(exp, texts)) == [modelward.assign(exp, t) for t in texts]
    monkeypatch.setattr(assignment, "_c_siphash", None)  # the pure-Python fallback
    assert [exp.hash(t) for t in texts] == fast
    assert [exp.assign(t) for t in texts] == arms


def test_assign_many_takes_lists_tuples_and_arrays_and_integers():
    exp = Experiment("t", "s", "control=95,treatment=5")
    ids = list(range(1, 3000))
    expected = [exp.assign(str(i)) for i in ids]
    assert [exp.assign(i) for i in ids] == expected
    assert list(exp.assign_many(ids)) == expected
    assert list(exp.assign_many(np.arange(1, 3000))) == expected
    assert list(exp.assign_many(tuple(str(i) for i in ids))) == expected
    assert list(exp.assign_many(np.array([str(i) for i in ids]))) == expected
    assert list(exp.assign_many([])) == []
    got = exp.assign_many(["1", "2"])  # the same str objects as assign() returns
    assert got[0] is exp.assign("1") and got[1] is exp.assign("2")


def _vectors() -> list[list[str]]:
    text = (ROOT / "docs" / "experiments.md").read_text()
    table = text.split("<!-- test vectors:", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip().strip("`") for c in line.strip("|").split("|")]
            for line in table.splitlines()[1:] if line.startswith("| ")]
    return rows[1:]  # past the header


def test_the_published_test_vectors_hold():
    rows = _vectors()
    assert len(rows) >= 10
    for salt, subject, key, h, uniform, arm_95, arm_112 in rows:
        two = Experiment("t", salt, "control=95,treatment=5")
        three = Experiment("t", salt, "a=1,b=1,c=2")
        assert key_of(salt).hex() == key
        assert f"{two.hash(subject):016x}" == h
        assert two.uniform(subject) == float(uniform) and repr(two.uniform(subject)) == uniform
        assert (two.assign(subject), three.assign(subject)) == (arm_95, arm_112)
        assert list(two.assign_many([subject])) == [arm_95]
        assert list(three.assign_many([subject])) == [arm_112]
    assert {r[5] for r in rows} == {"control", "treatment"}


def test_assignment_is_the_same_in_another_process_with_another_hash_seed():
    subjects = [f"u-{i}" for i in range(50)]
    code = ("import modelward, sys; e = modelward.Experiment('t', 'x:1', 'control=9,treatment=1');"
            "print(','.join(e.assign(s) for s in sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", code, *subjects], capture_output=True,
                         text=True, check=True, env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    exp = Experiment("t", "x:1", "control=9,treatment=1")
    assert out.strip().split(",") == [exp.assign(s) for s in subjects]


def test_shares_follow_the_weights_and_uniforms_are_uniform():
    exp = Experiment("t", "shares", "a=1,b=2,c=7")
    subjects = [f"user-{i}" for i in range(200_000)]
    counts = dict(zip(*np.unique(exp.assign_many(subjects), return_counts=True), strict=True))
    observed = [counts["a"], counts["b"], counts["c"]]
    assert stats.chisquare(observed, [20_000, 40_000, 140_000]).pvalue > 0.001
    u = (exp.hashes(subjects) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    assert stats.kstest(u, "uniform").pvalue > 0.001
    assert exp.bounds == (0.1, 0.3, 1.0)
    assert exp.shares == {"a": 0.1, "b": 0.2, "c": 0.7}


def test_different_salts_give_independent_assignments():
    a = Experiment("t", "one", "control=1,treatment=1").assign_many(range(1, 40_001))
    b = Experiment("t", "two", "control=1,treatment=1").assign_many(range(1, 40_001))
    table = [[int(((a == x) & (b == y)).sum()) for y in ("control", "treatment")]
             for x in ("control", "treatment")]
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_control_is_the_arm_named_control_else_the_first():
    assert Experiment("t", "s", "treatment=5,control=95").control == "control"
    assert Experiment("t", "s", "a=1,b=1").control == "a"


@pytest.mark.parametrize(("arms", "message"), [
    ("control=95", "at least two arms"),
    ("control=95,treatment", "'treatment' is not NAME=WEIGHT"),
    ("control=95,treatment=five", "weight of 'treatment' is not a number: 'five'"),
    ("control=95,treatment=0", "weight of 'treatment' must be a positive number, got 0.0"),
    ("control=95,treatment=-5", "must be a positive number"),
    ("control=95,treatment=inf", "must be a positive number"),
    ("control=95,control=5", "arm 'control' is listed twice"),
    ("=95,treatment=5", "arm name '' must be 1-100 characters"),
])
def test_bad_arms_are_refused_with_the_reason(arms, message):
    with pytest.raises(ValidationError, match=re.escape(message)) as info:
        parse_arms(arms)
    assert info.value.field == "arms"


def test_bad_subjects_and_salts_are_refused():
    exp = Experiment("t", "s", "a=1,b=1")
    for bad, message in (("", "subject: the subject is empty"),
                         (None, "subject: expected a string (or an integer) subject, got NoneType"),
                         (True, "subject: expected a string (or an integer) subject, got bool"),
                         ("\ud800", "subject: holds an unpaired surrogate")):
        with pytest.raises(ValidationError, match=re.escape(message)):
            exp.assign(bad)
    with pytest.raises(ValidationError, match=re.escape("subjects[1]: the subject is empty")):
        exp.assign_many(["a", "", "b"])
    with pytest.raises(ValidationError, match=re.escape("subjects[2]: holds an unpaired")):
        exp.assign_many(["a", "b", "\udc00"])
    with pytest.raises(ValidationError, match="salt: the salt must be a non-empty string"):
        Experiment("t", "", "a=1,b=1")


def test_importing_the_sdk_loads_neither_numpy_nor_scipy():
    code = ("import sys, modelward; e = modelward.Experiment('t', 's', 'a=1,b=1'); e.assign('x');"
            "print(sorted(m for m in ('numpy', 'scipy', 'typer', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
