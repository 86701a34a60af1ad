"""Guards: checks with stable codes that read the ledger and report findings.

``registry`` holds the code table; each active code has one module named after what it
checks (``stale_fleet`` for MW105) exposing ``CODE``, ``NAME``, ``SEVERITY``, ``STATUS``,
``OPTIONS`` and ``check(view, config) -> Iterator[Finding]``, documented by its docstring.
:func:`run` is what ``modelward check`` and the API call.
"""

from .finding import Finding
from .runner import Report, run, run_guard
from .view import View

__all__ = ["Finding", "Report", "View", "run", "run_guard"]
