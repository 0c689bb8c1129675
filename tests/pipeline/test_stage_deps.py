"""dvc.yaml's deps cover every project module a stage runs, so editing one re-runs the stage."""
import ast
from pathlib import Path

import yaml

from tests.conftest import REPO


def project_imports(path: Path) -> set[str]:
    """Project modules ``path`` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            file = REPO / (name.replace(".", "/") + ".py")
            if name.split(".")[0] in ("components", "serving") and file.is_file():
                found.add(file.relative_to(REPO).as_posix())
    return found


def import_closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += project_imports(REPO / module) - seen
    return seen - {"components/__init__.py"}


def test_every_stage_lists_the_project_code_it_imports_as_deps():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        deps = {d for d in stage["deps"] if d.endswith(".py")}
        missing = import_closure(f"components/{name}.py") - deps
        assert not missing, f"dvc.yaml stage {name} runs {sorted(missing)} but does not list them as deps"
