"""The shape the house style asks for, kept by a test: modules under ~250 lines, functions
under 40, and no new ``dict`` hand-off. What crosses a stage or the registry is a typed
record (components/records.py); the dict-typed parameters and returns that remain inside the
rooms are counted, and the count may only go down (lower it here when you replace one)."""
import ast

from tests.conftest import REPO

ROOMS = ("components", "serving", "dags", "brighthouse", "stack")
MAX_MODULE_LINES = 260
MAX_FUNCTION_LINES = 40
DICT_PARAMETERS = 85  # 2026-11-30
DICT_RETURNS = 72


def sources() -> dict[str, ast.Module]:
    return {f.relative_to(REPO).as_posix(): ast.parse(f.read_text(encoding="utf-8"))
            for room in ROOMS for f in sorted((REPO / room).rglob("*.py"))}


def functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def is_dict(annotation: ast.expr | None) -> bool:
    """``dict``, ``dict[...]`` or ``dict[...] | None``: a string-keyed bag, not a record."""
    if annotation is None:
        return False
    outer = ast.unparse(annotation).split("|")[0].split("[")[0].strip()
    return outer in ("dict", "Dict")


def test_modules_and_functions_stay_small():
    lines = {p: (REPO / p).read_text(encoding="utf-8").count("\n") for p in sources()}
    assert {p: n for p, n in lines.items() if n > MAX_MODULE_LINES} == {}, "split these modules by concept"
    long_functions = [f"{p}:{f.name} ({f.end_lineno - f.lineno + 1} lines)" for p, t in sources().items()
                      for f in functions(t) if (f.end_lineno or f.lineno) - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert long_functions == []


def test_no_new_dict_hand_offs():
    params = returns = 0
    for tree in sources().values():
        for f in functions(tree):
            args = f.args.posonlyargs + f.args.args + f.args.kwonlyargs
            params += sum(is_dict(a.annotation) for a in args)
            returns += is_dict(f.returns)
    assert params <= DICT_PARAMETERS and returns <= DICT_RETURNS, (
        f"{params} dict-typed parameters and {returns} dict-typed returns (limit {DICT_PARAMETERS} and "
        f"{DICT_RETURNS}): hand a typed record (pydantic, components/records.py) or a dataclass instead")
    assert params > DICT_PARAMETERS - 5 and returns > DICT_RETURNS - 5, (
        f"down to {params} and {returns}: lower DICT_PARAMETERS and DICT_RETURNS in this test to keep the gain")
