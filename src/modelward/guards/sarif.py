"""A :class:`~modelward.guards.runner.Report` as SARIF 2.1.0, in the shape GitHub code
scanning accepts (docs/check.md, "SARIF and GitHub code scanning").

Every result has a physical location, because code scanning rejects results without one.
A guard reads the ledger, not a file of the repository, so the location is the line of
the ``modelward.toml`` that configures the guard: its ``[check.MWxxx]`` table, else the
``[check]`` table, else line 1 (a suppression finding, MW001/MW002: the line of its
``[[check.suppress]]`` entry). The path is relative to the working directory, the checkout
in CI. Without such a file inside the working directory the location is the pseudo-file
:data:`LEDGER_PSEUDO_FILE`, line 1. The logical location keeps the finding's subject.

Each rule carries its guard's documentation (the docstring shipped in the package, also
``modelward explain``) as ``help.text`` and ``help.markdown``; ``helpUri`` links
``<docs_url>MWxxx.md`` when the ``docs_url`` setting is set.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from ..errors import ConfigError
from ..timefmt import iso
from . import registry
from .docs import HEADINGS, sections, to_markdown
from .finding import Finding
from .runner import Report

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
# Where results point when no modelward.toml inside the working directory configures them.
LEDGER_PSEUDO_FILE = ".modelward/ledger"
# GitHub code scanning rejects a run with more results than this (its "results per run").
MAX_RESULTS = 25_000
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_META = ("MW001", "MW002")  # findings about [[check.suppress]] entries

_CHECK = re.compile(r"^\s*\[\s*check\s*\]\s*(#.*)?$")
_GUARD_TABLE = re.compile(r"""^\s*\[\s*check\s*\.\s*["']?(MW\d{3})["']?\s*\]\s*(#.*)?$""",
                          re.IGNORECASE)
_SUPPRESS = re.compile(r"^\s*\[\[\s*check\s*\.\s*suppress\s*\]\]\s*(#.*)?$")


class ConfigLines:
    """Line numbers (1-based) of the ``[check]`` parts of a modelward.toml."""

    def __init__(self, text: str) -> None:
        self.check: int | None = None
        self.guards: dict[str, int] = {}
        self.suppress: list[int] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if _CHECK.match(line) and self.check is None:
                self.check = number
            elif m := _GUARD_TABLE.match(line):
                self.guards.setdefault(m.group(1).upper(), number)
            elif _SUPPRESS.match(line):
                self.suppress.append(number)

    def line_of(self, finding: Finding) -> int:
        if finding.code in _META:
            index = finding.evidence.get("suppression")
            if isinstance(index, int) and 1 <= index <= len(self.suppress):
                return self.suppress[index - 1]
        return self.guards.get(finding.code) or self.check or 1


def _config_location(report: Report, root: Path) -> tuple[str, ConfigLines | None]:
    """(uri relative to ``root``, its lines), or the pseudo-file when no config is inside."""
    if report.config:
        path = Path(report.config).resolve()
        if path.is_relative_to(root) and path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
            return path.relative_to(root).as_posix(), ConfigLines(text)
    return LEDGER_PSEUDO_FILE, None


def _docs_base(docs_url: str | None) -> str | None:
    if not docs_url:
        return None
    parts = urlsplit(docs_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"docs_url is {docs_url!r}, not an absolute http(s) URL",
                          hint="e.g. docs_url = \"https://github.com/ORG/REPO/blob/main/"
                               "docs/guards/\" in [modelward], or MODELWARD_DOCS_URL")
    return docs_url.rstrip("/") + "/"


def _rule(code: str, docs_base: str | None) -> dict:
    row = registry.BY_CODE[code]
    doc = registry.load(code).__doc__ or ""
    summary, parts = sections(doc, code)
    markdown = "\n\n".join([to_markdown(summary)]
                           + [f"## {h}\n\n{to_markdown(parts[h])}" for h in HEADINGS])
    rule = {
        "id": code, "name": row.name,
        "shortDescription": {"text": f"{code} {row.name}"},
        "fullDescription": {"text": f"Fires when {row.summary}."},
        "help": {"text": inspect.cleandoc(doc), "markdown": markdown},
        "defaultConfiguration": {"level": LEVEL[row.severity]},
    }
    if docs_base:
        rule["helpUri"] = f"{docs_base}{code}.md"
    return rule


def render(report: Report, *, docs_url: str | None = None,
           root: str | os.PathLike | None = None) -> str:
    """SARIF 2.1.0; suppressed findings are included with their suppression. ``root`` is
    the directory locations are relative to (default: the working directory)."""
    from .._version import __version__

    docs_base = _docs_base(docs_url)
    root_path = Path(root or Path.cwd()).resolve()
    uri, lines = _config_location(report, root_path)
    codes = list(report.guards_run)
    index = {c: i for i, c in enumerate(codes)}

    def result(f: Finding, suppression=None) -> dict:
        out = {
            "ruleId": f.code, "ruleIndex": index[f.code], "level": LEVEL[f.severity],
            "message": {"text": f.message + (f" Fix: {f.fix}." if f.fix else "")},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": lines.line_of(f) if lines else 1}},
                "logicalLocations": [{"name": f.subject, "kind": "resource"}]}],
            "partialFingerprints": {"modelwardFingerprint/v1": f.fingerprint},
            "properties": {"subject": f.subject, "evidence": f.evidence},
        }
        if suppression is not None:
            out["suppressions"] = [{"kind": "external", "status": "accepted",
                                    "justification": suppression.reason}]
        return out

    pairs = [(f, None) for f in report.findings] + list(report.suppressed)
    kept = pairs[:MAX_RESULTS]  # findings come most severe first, suppressed ones last
    invocation: dict = {"executionSuccessful": True, "endTimeUtc": iso(report.now)}
    if len(pairs) > len(kept):
        invocation["toolExecutionNotifications"] = [{
            "level": "warning",
            "message": {"text": f"{len(pairs) - len(kept)} of {len(pairs)} results left out: "
                                f"GitHub code scanning accepts at most {MAX_RESULTS} per run "
                                "(the least severe and the suppressed ones went first)"}}]
    driver = {"name": "modelward", "version": __version__, "semanticVersion": __version__,
              "rules": [_rule(code, docs_base) for code in codes]}
    if docs_base:
        driver["informationUri"] = f"{docs_base}index.md"
    doc = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            "invocations": [invocation],
            "results": [result(f, s) for f, s in kept],
        }],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
