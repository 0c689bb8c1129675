"""dvc.yaml's deps cover every project module a stage runs, so editing one re-runs the stage."""
import ast
from pathlib import Path

import yaml

from tests.conftest import REPO


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (imports for annotations never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def project_imports(path: Path) -> set[str]:
    """Project modules ``path`` imports anywhere it runs (module level or inside functions)."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
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


def test_dvc_lock_records_the_code_as_committed():
    """A fresh clone's `make demo` leaves dvc.lock as committed only if the lock's md5 of each
    stage's code is the code's own: an edit without the lock updated is caught here, not by a
    user who finds dvc.lock changed (and the stage re-run) after a plain `dvc repro`."""
    import hashlib

    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    stale = []
    for name, stage in lock["stages"].items():
        for dep in stage.get("deps", []):
            path = REPO / dep["path"]
            if dep["path"].endswith(".py") and path.is_file():
                if hashlib.md5(path.read_bytes()).hexdigest() != dep["md5"]:
                    stale.append(f"{name}: {dep['path']}")
    assert not stale, f"dvc.lock's md5 is not the file's (update dvc.lock): {stale}"
