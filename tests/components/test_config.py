import pytest
import yaml
from pydantic import ValidationError

from components.config import load_params
from tests.conftest import REPO


def test_repo_params_load_into_typed_sections(params):
    assert params.train.arch.width > 0
    assert params.evaluate.tiling.overlap < params.evaluate.tiling.tile
    assert params.register_.alias == "challenger"


@pytest.mark.parametrize("path", [("train", "learning_rate"), ("evaluate", "gate", "min_psnrr"), ("extra_section",)])
def test_unknown_keys_are_rejected(tmp_path, path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match=path[-1]):
        load_params(tmp_path / "params.yaml")


def test_config_is_frozen(params):
    with pytest.raises(ValidationError):
        params.train.iterations = 5


def test_every_stage_has_its_params_section_tracked_by_dvc():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    sections = set(yaml.safe_load((REPO / "params.yaml").read_text()))
    for name, stage in stages.items():
        assert name in sections, f"stage {name} has no params section"
        assert stage["params"] == [name]
        assert f"components.{name} " in stage["cmd"]
