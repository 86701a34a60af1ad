"""The code table, the guards' documentation and their tests stay complete and in sync."""

import re
from pathlib import Path

import pytest

from modelward.guards import config, docs, registry

ROOT = Path(__file__).resolve().parents[2]
ACTIVE = [row.code for row in registry.active()]


def test_code_table_is_well_formed():
    codes = [row.code for row in registry.CODES]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    assert len({row.name for row in registry.CODES}) == len(codes)
    for row in registry.CODES:
        assert re.fullmatch(r"MW\d{3}", row.code) and re.fullmatch(r"[a-z]+(-[a-z]+)*", row.name)
        assert row.severity in registry.SEVERITIES and row.status in registry.STATUSES
        assert (row.module is not None) == (row.status == "active")
    assert {"MW001", "MW002", "MW101", "MW102", "MW103", "MW104", "MW105"} <= set(ACTIVE)


@pytest.mark.parametrize("code", ACTIVE)
def test_guard_module_agrees_with_the_table(code):
    module = registry.load(code)
    row = registry.get(code)
    assert (module.CODE, module.NAME, module.SEVERITY, module.STATUS) == (
        row.code, row.name, row.severity, row.status)
    assert callable(module.check)
    assert module.__name__.rsplit(".", 1)[1] == row.module == row.name.replace("-", "_")


def test_guard_metadata_is_declared_once_in_the_code_table():
    """Each guard module takes its code, name, severity and status from its row, every
    guard module has a row, and a docstring that names the default severity names the
    table's."""
    guards = ROOT / "src" / "modelward" / "guards"
    modules = {p.stem for p in guards.glob("*.py")
               if re.search(r"^def check\(view, config\)", p.read_text(), re.M)}
    assert modules == {row.module for row in registry.active()}
    for row in registry.active():
        source = (guards / f"{row.module}.py").read_text()
        assert f'CODE = "{row.code}"\nNAME, SEVERITY, STATUS = declared(CODE)' in source, row.code
        assert not re.search(r"^(NAME|SEVERITY|STATUS) = ", source, re.M), row.code
        doc = " ".join(registry.load(row.code).__doc__.split())
        stated = re.findall(r"default severity \((\w+)\)", doc)
        assert set(stated) <= {row.severity}, (row.code, stated)


@pytest.mark.parametrize("code", ACTIVE)
def test_guard_docstring_has_every_heading_and_documents_its_options(code):
    module = registry.load(code)
    summary, parts = docs.sections(module.__doc__, code)
    assert list(parts) == list(docs.HEADINGS) and summary
    for option in module.OPTIONS:  # `severity`, common to all, is documented in check.md
        assert f"``{option.name}``" in parts["Configuration"], (code, option.name)


def test_a_docstring_missing_a_heading_is_rejected():
    doc = registry.load("MW105").__doc__.replace("How to fix\n----------", "Fixing\n------")
    with pytest.raises(ValueError, match="lacks the heading\\(s\\): How to fix"):
        docs.sections(doc, "MW105")
    with pytest.raises(ValueError, match="has no docstring"):
        docs.sections(None, "MW105")


def test_generated_guard_docs_are_present_and_up_to_date():
    stale = docs.stale(ROOT / "docs" / "guards")
    assert stale == [], ("docs/guards is out of date; run "
                         "`python -m modelward.guards.docs docs/guards`: " + ", ".join(stale))


def test_docs_check_mode_reports_a_stale_file(tmp_path):
    assert docs.main([str(tmp_path)]) == 0
    assert docs.main([str(tmp_path), "--check"]) == 0
    (tmp_path / "MW105.md").write_text("edited by hand\n")
    (tmp_path / "MW999.md").write_text("left over\n")
    assert docs.stale(tmp_path) == ["MW105.md", "MW999.md"]
    assert docs.main([str(tmp_path), "--check"]) == 1


def test_every_active_guard_has_a_firing_test_and_a_clean_control():
    source = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    tests = set(re.findall(r"^def test_(MW\d{3})_(fires|clean)", source, re.M))
    missing = [f"{code} {kind}" for code in ACTIVE for kind in ("fires", "clean")
               if (code, kind) not in tests]
    assert missing == [], ("guards without a test_<CODE>_fires_… / test_<CODE>_clean_… test "
                           "under tests/: " + ", ".join(missing))


def test_check_docs_cover_every_key_option_and_format():
    text = (ROOT / "docs" / "check.md").read_text()
    for key in (*config.TOP_KEYS, *config.SUPPRESS_KEYS):
        assert f"`{key}`" in text, key
    for option in ("--select", "--ignore", "--format", "--fail-on", "--exit-zero", "--since",
                   "--output"):
        assert f"`{option}" in text, option
    for fmt in ("text", "json", "github", "junit", "sarif"):
        assert f"`{fmt}`" in text, fmt
