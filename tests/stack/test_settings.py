"""The stack's settings: chosen once, private, reused; ports from the user when given."""
import stat

import pytest

from stack.settings import PORTS, load_or_create, secret_values, settings_file


def test_ports_and_credentials_are_chosen_once_privately_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIGHTHOUSE_STACK_MLFLOW_PORT", "5055")
    first = load_or_create(tmp_path / "stack")
    assert first.ports["mlflow"] == 5055 and set(first.ports) == set(PORTS)
    assert len(set(first.ports.values())) == len(PORTS)  # the kernel's free ports, all distinct
    assert stat.S_IMODE(settings_file(tmp_path / "stack").stat().st_mode) == 0o600
    monkeypatch.setenv("BRIGHTHOUSE_STACK_MLFLOW_PORT", "5056")
    assert load_or_create(tmp_path / "stack") == first  # a running stack's env file stays right
    other = load_or_create(tmp_path / "other")
    assert not set(secret_values(first)) & set(secret_values(other))


def test_a_foreign_settings_file_is_refused_by_name(tmp_path):
    (tmp_path / "stack.json").write_text('{"ports": {}}')
    with pytest.raises(ValueError, match=r"stack.json is not a brighthouse stack's settings"):
        load_or_create(tmp_path)
