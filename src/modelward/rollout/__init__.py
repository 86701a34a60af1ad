"""Rollout: salted assignment (:mod:`.assignment`, :mod:`.siphash`), the balanced salt
search (:mod:`.search`), the statistics and checks of experiments (:mod:`.balance`,
:mod:`.checks`, :mod:`.report`), pre-period tables (:mod:`.population`) and substrate
regimes (:mod:`.regimes`). Only :mod:`.assignment` is imported by the SDK."""
