"""A :class:`~modelward.guards.runner.Report` as text, JSON, GitHub workflow commands,
JUnit XML or SARIF 2.1.0 (:mod:`.sarif`). Pure functions returning a string; no terminal
styling, so the output is the same on a terminal, in a pipe and in a file. Subjects, messages
and fixes quote ledger values (names, reasons), so every format shows them inert
(:func:`modelward.display.inert`): a finding is one entry and its text cannot draw another."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import orjson

from ..display import inert, inert_json, plural
from ..timefmt import iso
from . import registry
from .finding import Finding
from .runner import Report

FORMATS = ("text", "json", "github", "junit", "sarif")
_PLURAL = {"error": "errors", "warning": "warnings", "info": "info"}


def render(report: Report, fmt: str, *, docs_url: str | None = None, root=None) -> str:
    """``docs_url`` (the setting) and ``root`` (what locations are relative to, default the
    working directory) shape SARIF only."""
    if fmt not in _RENDERERS:
        raise ValueError(f"unknown format {fmt!r}")
    if fmt == "sarif":
        return sarif(report, docs_url=docs_url, root=root)
    return _RENDERERS[fmt](report)


def summary_line(report: Report) -> str:
    counts = report.counts()
    n = len(report.findings)
    run = len(report.guards_run)
    tail = f"{plural(run, 'guard')} run"
    if report.skipped:
        tail += (f", {len(report.skipped)} skipped for lack of configuration ("
                 + ", ".join(report.skipped) + ")")
    if report.suppressed:
        tail += f", {len(report.suppressed)} suppressed"
    if not n:
        return f"no findings ({tail})"
    parts = ", ".join(plural(c, s, _PLURAL[s]) for s, c in counts.items())
    return f"{plural(n, 'finding')}: {parts} ({tail})"


def config_line(report: Report) -> str:
    """Which modelward.toml the run read (settings.find_config_file)."""
    if report.config:
        return f"config: {report.config}"
    return ("config: none found (defaults; looked for --config, MODELWARD_CONFIG, "
            "$MODELWARD_HOME/modelward.toml, ./modelward.toml)")


def text(report: Report) -> str:
    lines: list[str] = [config_line(report), ""]
    for severity in reversed(registry.SEVERITIES):
        group = [f for f in report.findings if f.severity == severity]
        if not group:
            continue
        lines.append(f"{_PLURAL[severity]} ({len(group)})")
        for f in group:
            lines.append(f"  {f.code} {f.name}  {inert(f.subject)}")
            lines.append(f"    {inert(f.message)}")
            if f.fix:
                lines.append(f"    fix: {inert(f.fix)}")
        lines.append("")
    for title, group in (("skipped for lack of configuration", report.skipped),
                         ("ran in part for lack of configuration", report.limited)):
        if group:
            lines.append(f"{title} ({len(group)})")
            for code, reason in group.items():
                lines.append(f"  {code} {registry.BY_CODE[code].name}  {inert(reason)}")
            lines.append("")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def json_(report: Report) -> str:
    return inert_json(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode()) + "\n"


def _gh_escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


_GH_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def github(report: Report) -> str:
    """GitHub Actions workflow commands: one annotation per finding."""
    lines = []
    for f in report.findings:
        body = f"{inert(f.subject)}: {inert(f.message)}" + (f"\nfix: {inert(f.fix)}"
                                                             if f.fix else "")
        lines.append(f"::{_GH_LEVEL[f.severity]} title={_gh_escape(f'{f.code} {f.name}', prop=True)}"
                     f"::{_gh_escape(body)}")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def junit(report: Report) -> str:
    """One test case per guard that ran and found nothing, one per finding; findings at
    or above fail_on are failures, the rest pass with the finding in system-out."""
    failing = {id(f) for f in report.failing()}
    suites = ET.Element("testsuites", name="modelward check")
    suite = ET.SubElement(suites, "testsuite", name="modelward", timestamp=iso(report.now),
                          time=f"{report.seconds:.3f}")
    cases = failures = 0
    by_code: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_code.setdefault(f.code, []).append(f)
    for code in report.guards_run:
        name = registry.BY_CODE[code].name
        found = by_code.get(code, [])
        if not found:
            ET.SubElement(suite, "testcase", classname=code, name=name,
                          time=f"{report.timings.get(code, 0.0):.3f}")
            cases += 1
        for f in found:
            case = ET.SubElement(suite, "testcase", classname=code,
                                 name=f"{name}: {inert(f.subject)}")
            cases += 1
            detail = f"{inert(f.message)}\nfix: {inert(f.fix)}\nfingerprint: {f.fingerprint}"
            if id(f) in failing:
                failure = ET.SubElement(case, "failure", message=inert(f.message),
                                        type=f.severity)
                failure.text = detail
                failures += 1
            else:
                ET.SubElement(case, "system-out").text = f"{f.severity}: {detail}"
    for element in (suites, suite):
        element.set("tests", str(cases))
        element.set("failures", str(failures))
        element.set("errors", "0")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def sarif(report: Report, *, docs_url: str | None = None, root=None) -> str:
    """SARIF 2.1.0 as GitHub code scanning accepts it (:mod:`.sarif`)."""
    from . import sarif as sarif_format

    return inert_json(sarif_format.render(report, docs_url=docs_url, root=root))


_RENDERERS = {"text": text, "json": json_, "github": github, "junit": junit, "sarif": sarif}
