"""bench/ is not a package of the install: the calibration scenarios (``bench/calib``) are
imported from the checkout, as ``bench/calibration.py`` does."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
