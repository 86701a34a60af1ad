"""Fixtures for guard tests: the realistic clean ledger and a one-guard runner."""

from __future__ import annotations

import pytest

from modelward.guards import run_guard

from .builders import NOW, healthy


@pytest.fixture
def fleet(ledger, tmp_path):
    """The realistic clean ledger (see builders.healthy); yields its digests by role."""
    return healthy(ledger.store, tmp_path)


@pytest.fixture
def findings(ledger):
    """findings(code, **options) runs one guard at NOW and returns its findings."""
    def run(code: str, *, now: int = NOW, since: int | None = None, settings=None, **options):
        return run_guard(ledger.store, settings or ledger.settings, code, now=now, since=since,
                         **options)
    return run
