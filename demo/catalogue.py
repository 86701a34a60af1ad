"""Every episode of the story, in the order they are planted."""

from __future__ import annotations

from . import (
    contamination,
    curation,
    evaluation,
    incidents,
    lifecycle,
    replay,
    retrieval,
    rollout,
    safety,
)
from .episodes import COVERED, Episode, collect, covers

EPISODES: list[Episode] = collect(incidents, contamination, evaluation, curation, lifecycle,
                                  replay, retrieval, rollout, safety)

__all__ = ["COVERED", "EPISODES", "Episode", "covers"]
