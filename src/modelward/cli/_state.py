"""The root options every command reads (``--home``, ``--database-url``, ``--config``,
``--debug``): a leaf module, so the ``modelward`` entry point imports nothing heavy."""

from __future__ import annotations


class State:
    debug = False
    home: str | None = None
    database_url: str | None = None
    config: str | None = None
