"""The architecture holds: neither the engine nor the forms import Flask, every form key has a form, the map is true."""

import ast
import re
from pathlib import Path

from engine import procedures
from engine.diagrams import loading
from engine.settings import REPO_ROOT


def _imports_of(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    """Every import under a folder of the repository whose top-level package is one of the forbidden."""
    offenders = []
    for path in (REPO_ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            offenders += [f"{path.relative_to(REPO_ROOT)}: {n}" for n in names if n.split(".")[0] in forbidden]
    return offenders


def test_engine_imports_no_flask_and_nothing_above_it():
    assert _imports_of("engine", ("flask", "flask_login", "flask_wtf", "flask_limiter", "web", "forms")) == []


def test_forms_import_no_flask_and_no_web():
    assert _imports_of("forms", ("flask", "flask_login", "flask_wtf", "flask_limiter", "web")) == []


def test_every_form_key_in_every_diagram_belongs_to_its_procedure():
    for path in loading.workflow_files(REPO_ROOT / "workflows"):
        procedure = procedures.get(path.stem)
        loaded = loading.load_diagram(Path(path).read_bytes(), path.stem, procedure.form_keys())
        assert loaded.form_keys <= procedure.form_keys()
        assert loaded.form_keys, f"{path.name} has no user task"


def test_the_module_map_names_every_module_and_nothing_that_is_gone():
    """docs/modules.md is where a new engineer finds their room: it names every module, and only what exists."""
    text = (REPO_ROOT / "docs" / "modules.md").read_text()
    migrations = REPO_ROOT / "engine" / "db" / "migrations"
    modules = [
        path
        for top in ("engine", "forms", "web")
        for path in (REPO_ROOT / top).rglob("*.py")
        if not path.is_relative_to(migrations) or path.name == "env.py"
    ]
    modules += (REPO_ROOT / "web" / "static" / "js").rglob("*.js")
    named = set(re.findall(r"`((?:engine|forms|web|bench|tests|workflows|docs)/[\w/.<>-]*)`", text))
    missing = sorted({str(path.relative_to(REPO_ROOT)) for path in modules} - named)
    gone = sorted(name for name in named if "<" not in name and not (REPO_ROOT / name).exists())
    assert missing == [], "add these to docs/modules.md"
    assert gone == [], "docs/modules.md names paths that do not exist"
