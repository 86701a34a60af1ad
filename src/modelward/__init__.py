"""modelward: which checkpoint, prompt, embedder and data produced every output, and the
guards that catch the silent changes that make evals, experiments and audits lie."""

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import (
    ConfigError,
    IntegrityError,
    ModelwardError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from .ids import uuid7

if TYPE_CHECKING:
    from .sdk import Experiment, Ledger, Resolution, assign, assign_many, open

# The SDK (and with it SQLAlchemy) is imported on first use of one of its names, so that
# `import modelward.errors` or the CLI's entry point does not pay for it.
_SDK = ("Experiment", "Ledger", "Resolution", "assign", "assign_many", "open")


def __getattr__(name: str):
    if name in _SDK:
        from . import sdk

        value = getattr(sdk, name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:  # a submodule not imported yet: modelward.sdk, modelward.ledger, ...
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SDK))

__all__ = [
    "ConfigError",
    "Experiment",
    "IntegrityError",
    "Ledger",
    "ModelwardError",
    "NotFoundError",
    "Resolution",
    "StorageError",
    "ValidationError",
    "__version__",
    "assign",
    "assign_many",
    "open",
    "uuid7",
]
