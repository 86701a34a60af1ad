"""Layer checks: only ``ledger/`` builds SQL on the schema tables, no guard imports another
guard, and the import-linter contract of pyproject.toml holds (DESIGN, "Layers")."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from modelward.guards import registry

SRC = Path(__file__).resolve().parents[1] / "src" / "modelward"


def imported(path: Path) -> set[str]:
    """The absolute ``modelward.…`` names a module imports (modules and imported names)."""
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)
    return out


def modules(under: Path = SRC) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "migrations" not in p.parts)


def test_imported_resolves_relative_imports():
    names = imported(SRC / "guards" / "view.py")
    assert "modelward.ledger.aliases" in names and "modelward.display.short_digest" in names


def test_only_the_ledger_imports_the_schema():
    ledger = SRC / "ledger"
    offenders = [str(p.relative_to(SRC)) for p in modules()
                 if ledger not in p.parents and "modelward.ledger.schema" in imported(p)]
    assert offenders == [], ("these modules build SQL on the schema tables themselves; "
                             "give them a read function in ledger/ instead")


def test_no_guard_imports_another_guard():
    guards = {f"modelward.guards.{row.module}" for row in registry.active()}
    found = {}
    for name in sorted(guards):
        path = SRC / "guards" / f"{name.rsplit('.', 1)[1]}.py"
        others = {g for g in guards - {name}
                  if any(i == g or i.startswith(g + ".") for i in imported(path))}
        if others:
            found[name] = sorted(others)
    assert found == {}


def test_guards_build_no_sql():
    """A guard passes its view to ledger read functions; it imports no SQLAlchemy."""
    found = [row.module for row in registry.active()
             if any(i == "sqlalchemy" or i.startswith("sqlalchemy.")
                    for i in imported(SRC / "guards" / f"{row.module}.py"))]
    assert found == []


# The import-linter contract (pyproject.toml, [tool.importlinter]): surfaces -> guards ->
# domains -> endpoints -> ledger -> foundations, and an SDK that imports no surface.

ROOT = SRC.parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root/src`` with the contract in ``root``."""
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run([str(exe), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def planted(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package with ``line`` appended to ``module`` (a path under modelward/)."""
    shutil.copytree(SRC, tmp_path / "src" / "modelward",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "modelward" / module
    target.write_text(target.read_text() + "\n" + line + "\n")
    return tmp_path


def test_a_planted_back_edge_is_caught(tmp_path):
    root = planted(tmp_path, "ledger/aliases.py", "from ..registry import audit  # noqa")
    result = lint_imports(root)
    assert result.returncode == 1, result.stdout
    assert "1 kept, 1 broken" in result.stdout
    assert "modelward.ledger.aliases -> modelward.registry.audit" in result.stdout


def test_an_sdk_importing_a_surface_is_caught(tmp_path):
    root = planted(tmp_path, "sdk/loading.py", "import rich  # noqa")
    result = lint_imports(root)
    assert result.returncode == 1, result.stdout
    assert "modelward.sdk.loading -> rich" in result.stdout
