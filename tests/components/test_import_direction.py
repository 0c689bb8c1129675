"""The library's rooms depend downward only, and stage modules sit on top: a room that imports
one above it (or a stage) would drag that room into every stage and DVC dep list that uses it."""
import ast
from pathlib import Path

from tests.conftest import REPO

BASE = {"components.config", "components.errors", "components.records"}
ROOMS = ["data", "inference", "model", "registry", "evaluation"]  # each may import those before it


def rank(module: str) -> int:
    """0 for the base, 1.. for the rooms in order, above them all for stage-level modules."""
    if module in BASE:
        return 0
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in ROOMS:
        return 1 + ROOMS.index(parts[1])
    return len(ROOMS) + 1


def imported_components(path: Path) -> set[str]:
    """Every ``components`` module ``path`` imports, at any level (type-only imports included:
    an annotation that names a higher room is still a dependency on it)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("components"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            found |= {n for n in names if (REPO / (n.replace(".", "/") + ".py")).is_file()} or {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("components")}
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def test_no_library_module_imports_a_room_above_it_or_a_stage():
    upward = []
    for path in sorted((REPO / "components").rglob("*.py")):
        name = module_name(path)
        upward += [f"{name} imports {other}" for other in sorted(imported_components(path))
                   if other != "components" and rank(other) > rank(name)]
    assert not upward, "imports that run up:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    assert rank("components.data.imageio") < rank("components.evaluation.metrics") < rank("components.train")
    probe = tmp_path / "probe.py"
    probe.write_text("from components.evaluation import metrics\nimport components.train\n")
    assert imported_components(probe) == {"components.evaluation.metrics", "components.train"}
