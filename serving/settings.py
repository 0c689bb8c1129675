"""A serving box's settings, without a checkout: defaults, then an optional file, then the
environment, then flags. The defaults are ``ServeConfig``'s, the same that params.yaml's
``serve`` section starts from, so a box and a checkout serve alike unless told otherwise.

- File: ``--config FILE``, else ``./params.yaml`` if there is one. Either a whole params.yaml
  (its ``serve`` and ``registry`` sections are used, and the rest is validated too) or a file
  holding only those two sections.
- Environment: ``BRIGHTHOUSE_SERVE_<FIELD>`` (``BRIGHTHOUSE_SERVE_PORT=8001``) and
  ``BRIGHTHOUSE_REGISTRY_<FIELD>`` (``BRIGHTHOUSE_REGISTRY_MODEL_NAME``). A variable with
  either prefix that names no setting is refused, so a typo cannot silently serve defaults.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from components.config import RegistryConfig, ServeConfig, load_params

SERVE_PREFIX = "BRIGHTHOUSE_SERVE_"
REGISTRY_PREFIX = "BRIGHTHOUSE_REGISTRY_"
SERVING_SECTIONS = {"serve", "registry"}
DEFAULT_FILE = Path("params.yaml")


def serve_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> ServeConfig:
    environ = os.environ if environ is None else environ
    serve, registry = _from_file(config_file)
    serve.update(_from_env(environ, SERVE_PREFIX, set(ServeConfig.model_fields) - {"registry"}))
    registry.update(_from_env(environ, REGISTRY_PREFIX, set(RegistryConfig.model_fields)))
    try:
        return ServeConfig.model_validate({**serve, "registry": registry})
    except ValueError as exc:
        where = f"{config_file or DEFAULT_FILE} and " if (config_file or DEFAULT_FILE.is_file()) else ""
        raise ValueError(f"serving settings from {where}{SERVE_PREFIX}*/{REGISTRY_PREFIX}* are invalid: {exc}") from exc


def _from_file(config_file: Path | None) -> tuple[dict, dict]:
    if config_file is None and not DEFAULT_FILE.is_file():
        return {}, {}
    path = config_file or DEFAULT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such settings file")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with a `serve` section, got {type(raw).__name__}")
    if set(raw) - SERVING_SECTIONS:  # a whole params.yaml: validated as the pipeline reads it
        cfg = load_params(path).serve
        return cfg.model_dump(exclude={"registry"}), cfg.registry.model_dump()
    return dict(raw.get("serve") or {}), dict(raw.get("registry") or {})


def _from_env(environ: Mapping[str, str], prefix: str, fields: set[str]) -> dict[str, str]:
    found = {}
    for key, value in environ.items():
        if not key.startswith(prefix):
            continue
        field = key[len(prefix):].lower()
        if field not in fields:
            raise ValueError(f"{key} names no setting; {prefix}<FIELD> takes one of: {', '.join(sorted(fields))}")
        found[field] = value
    return found
