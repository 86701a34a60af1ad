"""An exposure's ``at`` is held to the ``clock_skew`` setting as a decision's is: a host
whose clock runs ahead would otherwise put its exposures beyond every check window."""

from __future__ import annotations

import re

import pytest

from modelward.errors import ValidationError
from modelward.ledger import experiments as ledger_experiments
from modelward.timefmt import iso, now_us

from .world import create

MIN = 60 * 1_000_000


def _exposure(at) -> dict:
    return {"experiment": "checkout", "subject": "u-1", "arm": "control", "at": at}


def test_normalize_refuses_an_at_beyond_the_skew_and_keeps_one_within():
    now = now_us()
    with pytest.raises(ValidationError, match=re.escape(
            "at: " + iso(now + 10 * MIN) + " is 10m after it was recorded")) as err:
        ledger_experiments.normalize_exposure(_exposure(now + 10 * MIN), now=now,
                                              skew=5 * MIN, line=3)
    assert "beyond clock_skew (5m)" in str(err.value) and err.value.line == 3
    row = ledger_experiments.normalize_exposure(_exposure(now + 4 * MIN), now=now, skew=5 * MIN)
    assert row[4] == now + 4 * MIN
    # without a skew (a caller that judges time itself) nothing is refused
    assert ledger_experiments.normalize_exposure(_exposure(now + 10 * MIN), now=now)[4] == \
        now + 10 * MIN


def test_expose_and_import_refuse_a_future_at_and_write_nothing(ledger):
    store = ledger.store
    create(store, "checkout", "e:1")
    ahead = now_us() + 60 * MIN  # the default clock_skew is 5 minutes
    with pytest.raises(ValidationError, match="beyond clock_skew"):
        ledger.expose("checkout", "u-1", "control", at=ahead)
    with pytest.raises(ValidationError, match=r"beyond clock_skew \(5m\).*nothing was written"):
        ledger_experiments.import_exposures(store, [(1, _exposure(now_us() - MIN)),
                                                    (2, _exposure(iso(ahead)))])
    ledger.flush()
    with store.read() as conn:
        assert ledger_experiments.read_exposures(conn, "checkout") == []
    res = ledger_experiments.import_exposures(store, [(1, _exposure(now_us() + MIN))])
    assert res.inserted == 1
