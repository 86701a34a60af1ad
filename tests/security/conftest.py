"""One real ``modelward serve`` per test module, with small upload and batch limits so an
oversize body is a few MiB (the other limits keep their defaults)."""

from __future__ import annotations

import pytest

from .server import MIB, Target

LIMITS = {"MODELWARD_MAX_BATCH_BODY": str(8 * MIB), "MODELWARD_MAX_UPLOAD": str(8 * MIB)}


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    found = Target(tmp_path_factory.mktemp("attacked") / "home", dict(LIMITS)).start()
    yield found
    found.stop()
