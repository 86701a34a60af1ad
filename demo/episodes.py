"""What an episode is: a function that plants an incident (or a clean control) in the
:class:`~demo.world.World`, marked with :func:`episode`. Marking has no side effect;
:mod:`demo.catalogue` lists the modules and collects their episodes in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from .world import Expected, World

# The guard code prefixes this scenario scripts: within them, the findings must be exactly
# what the episodes plant. Findings of guards outside them (activated by later releases)
# are shown but not judged until an episode covers them; widen this when you add one.
COVERED = ("MW0", "MW1", "MW201", "MW202", "MW203", "MW204", "MW205", "MW206", "MW301",
           "MW302", "MW303", "MW304", "MW401", "MW402", "MW403", "MW404", "MW405", "MW501", "MW502")


@dataclass(frozen=True)
class Episode:
    name: str
    kind: str  # "incident" (plants findings) or "control" (must raise nothing)
    title: str
    plant: Callable[[World], list[Expected]]


def covers(code: str) -> bool:
    return code.startswith(COVERED)


def episode(name: str, kind: str, title: str):
    """Mark the decorated function as an episode; ``title`` is its one-line story."""
    if kind not in ("incident", "control"):
        raise ValueError(f"episode kind must be incident or control, not {kind!r}")

    def mark(fn: Callable[[World], list[Expected]]):
        fn.episode = Episode(name, kind, title, fn)
        return fn
    return mark


def collect(*modules: ModuleType) -> list[Episode]:
    """The episodes marked in ``modules``, module by module in definition order; a name
    used twice is refused."""
    found: list[Episode] = []
    for module in modules:
        for value in vars(module).values():
            ep = getattr(value, "episode", None)
            if isinstance(ep, Episode) and getattr(value, "__module__", None) == module.__name__:
                if any(e.name == ep.name for e in found):
                    raise ValueError(f"episode {ep.name!r} is defined twice")
                found.append(ep)
    return found
