"""modelward: which checkpoint, prompt, embedder and data produced every output, and the
guards that catch the silent changes that make evals, experiments and audits lie."""

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
from .sdk import Experiment, Ledger, Resolution, assign, assign_many, open

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
