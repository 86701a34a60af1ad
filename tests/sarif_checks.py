"""What a SARIF file must be: valid against the OASIS SARIF 2.1.0 schema (vendored in
tests/data/, see its README), and what GitHub code scanning documents it accepts on
upload, encoded as explicit checks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema

SCHEMA = json.loads((Path(__file__).resolve().parent / "data" /
                     "sarif-schema-2.1.0.json").read_text())

# GitHub code scanning's documented limits ("SARIF support for code scanning": upload
# limits); a file over a hard limit is rejected whole.
GITHUB_LIMITS = {"runs": 20, "results": 25_000, "rules": 25_000, "locations": 1_000,
                 "tags": 20, "gzip_bytes": 10 * 1024 * 1024}


def github_upload_problems(doc: dict) -> list[str]:
    """What GitHub code scanning would reject or not show, one line per problem: version
    2.1.0; runs, results, rules, locations and tags within its limits; a tool name; unique
    rule ids; every result with a ruleId of a rule, a message text, a physical location
    whose artifact URI is relative to the repository root with a region starting at line
    1 or later, and partialFingerprints; helpUri, when given, absolute."""
    problems = []
    if doc.get("version") != "2.1.0":
        problems.append(f"version {doc.get('version')!r}")
    size = len(gzip.compress(json.dumps(doc).encode()))
    if size > GITHUB_LIMITS["gzip_bytes"]:
        problems.append(f"{size} bytes gzipped")
    runs = doc.get("runs") or []
    if not 1 <= len(runs) <= GITHUB_LIMITS["runs"]:
        problems.append(f"{len(runs)} runs")
    for n, run in enumerate(runs):
        driver = run.get("tool", {}).get("driver", {})
        if not driver.get("name"):
            problems.append(f"run {n}: no tool.driver.name")
        rules = driver.get("rules") or []
        ids = [r.get("id") for r in rules]
        if len(rules) > GITHUB_LIMITS["rules"]:
            problems.append(f"run {n}: {len(rules)} rules")
        if not all(ids) or len(set(ids)) != len(ids):
            problems.append(f"run {n}: rule ids missing or repeated: {ids}")
        for rule in rules:
            tags = rule.get("properties", {}).get("tags", [])
            if len(tags) > GITHUB_LIMITS["tags"]:
                problems.append(f"rule {rule['id']}: {len(tags)} tags")
            if "helpUri" in rule:
                parts = urlsplit(rule["helpUri"])
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    problems.append(f"rule {rule['id']}: helpUri {rule['helpUri']!r}")
            if not rule.get("shortDescription", {}).get("text"):
                problems.append(f"rule {rule['id']}: no shortDescription.text")
        results = run.get("results") or []
        if len(results) > GITHUB_LIMITS["results"]:
            problems.append(f"run {n}: {len(results)} results")
        for i, r in enumerate(results):
            where = f"run {n} result {i}"
            if r.get("ruleId") not in ids:
                problems.append(f"{where}: ruleId {r.get('ruleId')!r} is not a rule's id")
            elif "ruleIndex" in r and ids[r["ruleIndex"]] != r["ruleId"]:
                problems.append(f"{where}: ruleIndex {r['ruleIndex']} is not {r['ruleId']}")
            if not r.get("message", {}).get("text"):
                problems.append(f"{where}: no message.text")
            locations = r.get("locations") or []
            if not 1 <= len(locations) <= GITHUB_LIMITS["locations"]:
                problems.append(f"{where}: {len(locations)} locations")
                continue
            physical = locations[0].get("physicalLocation")
            if not physical:
                problems.append(f"{where}: expected a physical location")
                continue
            uri = physical.get("artifactLocation", {}).get("uri", "")
            parts = urlsplit(uri)
            if (not uri or parts.scheme or parts.netloc or uri.startswith("/")
                    or "\\" in uri or ".." in uri.split("/")):
                problems.append(f"{where}: artifact uri {uri!r} is not relative to the root")
            start = physical.get("region", {}).get("startLine")
            if not isinstance(start, int) or start < 1:
                problems.append(f"{where}: region.startLine {start!r}")
            fps = r.get("partialFingerprints")
            if not fps or not all(isinstance(k, str) and isinstance(v, str) and v
                                  for k, v in fps.items()):
                problems.append(f"{where}: partialFingerprints {fps!r}")
    return problems


def schema_errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMA,
                                           format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]
