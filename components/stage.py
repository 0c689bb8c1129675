"""The thin ``main()`` every stage shares: paths from the command line, knobs from params.yaml.

dvc.yaml passes each stage its paths (``--data data --out artifacts/...``); everything else
comes from the stage's params.yaml section, so DVC tracks it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from components.config import Params, load_params
from components.errors import StageFailed

P = TypeVar("P")


def parse_paths(paths_cls: type[P], argv: Sequence[str] | None) -> tuple[P, Path]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for f in dataclasses.fields(paths_cls):  # type: ignore[arg-type]
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=Path, required=True)
    ns = vars(parser.parse_args(argv))
    params_path = ns.pop("params")
    return paths_cls(**ns), params_path


def section(params: Params, name: str) -> Any:
    """The params.yaml section a stage of this name may read (and DVC tracks)."""
    return getattr(params, {"validate": "validate_", "register": "register_"}.get(name, name))


def run_stage(
    name: str,
    paths_cls: type[P],
    run: Callable[[Any, P], Any],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse, run with the stage's own params section, print the small result as JSON;
    a StageFailed becomes exit code 1."""
    # Our progress at INFO; libraries (great-expectations, MLflow) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    for logger in ("components", "__main__"):  # stages run as ``python -m components.<stage>``
        logging.getLogger(logger).setLevel(logging.INFO)
    paths, params_path = parse_paths(paths_cls, argv)
    try:
        result = run(section(load_params(params_path), name), paths)
    except StageFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, BaseModel):  # a typed record: printed as it is written
        result = result.model_dump(mode="json")
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
