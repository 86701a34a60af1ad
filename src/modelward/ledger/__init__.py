"""The record: every read and write of the ledger database and blob store.

One module per concept; no domain package is imported from here."""

from .engine import Store

__all__ = ["Store"]
