"""A serving box has no checkout: settings come from defaults, an optional file, the
environment and flags, and a wrong name anywhere is refused, not ignored."""
import pytest
import yaml

from components.config import ServeConfig, load_params
from serving.settings import serve_settings
from tests.conftest import REPO


def test_without_a_file_the_defaults_are_params_yaml_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert serve_settings(None, {}) == ServeConfig()


def test_the_environment_overrides_the_file_and_is_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "box.yaml").write_text(yaml.safe_dump({"serve": {"port": 9000, "max_waiting": 3},
                                                       "registry": {"model_name": "client-a"}}))
    cfg = serve_settings(tmp_path / "box.yaml", {"BRIGHTHOUSE_SERVE_PORT": "9001",
                                                 "BRIGHTHOUSE_REGISTRY_CHAMPION_ALIAS": "prod"})
    assert (cfg.port, cfg.max_waiting) == (9001, 3)
    assert (cfg.registry.model_name, cfg.registry.champion_alias) == ("client-a", "prod")


def test_a_checkout_params_yaml_in_the_working_folder_is_read_whole(tmp_path, monkeypatch):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["serve"]["max_waiting"] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    assert serve_settings(None, {}) == load_params(tmp_path / "params.yaml").serve
    assert serve_settings(None, {}).max_waiting == 5


@pytest.mark.parametrize("environ, named", [
    ({"BRIGHTHOUSE_SERVE_PROT": "1"}, "BRIGHTHOUSE_SERVE_PROT"),
    ({"BRIGHTHOUSE_REGISTRY_NAME": "x"}, "BRIGHTHOUSE_REGISTRY_NAME"),
    ({"BRIGHTHOUSE_SERVE_PORT": "eighty"}, "port"),
])
def test_a_wrong_variable_is_refused_by_name(tmp_path, monkeypatch, environ, named):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=named):
        serve_settings(None, environ)


def test_a_wrong_file_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        serve_settings(tmp_path / "missing.yaml", {})
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"serve": {"max_qeue": 3}}))
    with pytest.raises(ValueError, match="max_qeue"):
        serve_settings(tmp_path / "typo.yaml", {})
