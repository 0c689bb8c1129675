"""Airflow runs in subprocesses with an isolated AIRFLOW_HOME (it writes config at import)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import tool_env


def airflow_env(home: Path, dags: Path, **extra: str) -> dict[str, str]:
    return tool_env(
        AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__UNIT_TEST_MODE="False", **extra,
    )


@pytest.fixture
def airflow_home(tmp_path: Path) -> Path:
    return tmp_path / "airflow"
