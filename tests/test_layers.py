"""The architecture holds: the engine never imports Flask, and every form key has a form."""

import ast
from pathlib import Path

from engine import procedures
from engine.diagrams import specs
from engine.settings import REPO_ROOT


def test_engine_imports_no_flask():
    offenders = []
    for path in (REPO_ROOT / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            offenders += [
                f"{path.relative_to(REPO_ROOT)}: {n}"
                for n in names
                if n.split(".")[0] in ("flask", "flask_login", "flask_wtf", "web", "forms")
            ]
    assert offenders == []


def test_every_form_key_in_every_diagram_belongs_to_its_procedure():
    for path in specs.workflow_files(REPO_ROOT / "workflows"):
        procedure = procedures.get(path.stem)
        loaded = specs.load_diagram(Path(path).read_bytes(), path.stem, procedure.form_keys())
        assert loaded.form_keys <= procedure.form_keys()
        assert loaded.form_keys, f"{path.name} has no user task"
