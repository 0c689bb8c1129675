import pytest
import yaml
from pydantic import ValidationError

from components.config import load_params
from tests.conftest import REPO


def test_repo_params_load_into_typed_sections(params):
    assert params.train.arch.width > 0
    assert params.inference.tiling.overlap < params.inference.tiling.tile
    assert params.registry.challenger_alias == "challenger"


def test_the_model_name_and_aliases_have_one_home_handed_to_every_user(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["registry"] = {"model_name": "listings", "champion_alias": "prod", "challenger_alias": "candidate"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "params.yaml")
    assert params.evaluate.registry == params.register_.registry == params.serve.registry == params.registry
    assert params.serve.registry.champion_alias == "prod"


@pytest.mark.parametrize("section,key", [("serve", "model_name"), ("register", "alias"), ("evaluate", "registry")])
def test_a_second_home_for_the_name_or_aliases_is_refused(tmp_path, section, key):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw[section][key] = {"model_name": "other"} if key == "registry" else "other"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match=key):
        load_params(tmp_path / "params.yaml")


def _differences(model, raw: dict, where: str) -> list[str]:
    """Keys set in params.yaml whose value differs from the code default of ``model`` (a field
    with no default, such as the inference mode, has no second truth to differ)."""
    out = []
    for key, value in raw.items():
        if type(model).model_fields[key].is_required():
            continue
        default = getattr(model, key)
        if isinstance(value, dict) and hasattr(default, "model_fields"):
            out += _differences(default, value, f"{where}.{key}")
        elif (list(default) if isinstance(default, tuple) else default) != value:
            out.append(f"{where}.{key}: code {default!r}, params.yaml {value!r}")
    return out


def test_code_defaults_equal_params_yaml():
    """A default that differs from params.yaml is a second, silent truth: whoever builds a
    config in code (a test, a notebook, a DAG) gets other behaviour than the pipeline."""
    from components.config import Params

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    defaults = {name: field.annotation.model_construct() for name, field in Params.model_fields.items()}
    diffs = []
    for name, section in raw.items():
        model = defaults[{"validate": "validate_", "register": "register_"}.get(name, name)]
        section = {k: v for k, v in section.items() if k not in ("profile", "profiles")}  # train's named sets
        diffs += _differences(model, section, name)
    assert not diffs, "\n".join(diffs)


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
    from components.config import SHARED_SECTIONS

    for name, stage in stages.items():
        assert name in sections, f"stage {name} has no params section"
        shared = [section for section, users in SHARED_SECTIONS.items() if name in users]
        assert stage["params"] == [name] + shared
        assert f"components.{name} " in stage["cmd"]


def test_train_profiles_switch_without_editing_the_file(tmp_path):
    import pytest
    import yaml

    from components.config import load_params
    from tests.conftest import REPO

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert load_params(REPO / "params.yaml").train.arch.width == 16  # tiny: the committed default
    for name, width in (("gb10", 32), ("h100", 32)):
        raw["train"]["profile"], raw["inference"]["mode"] = name, "global_view"  # what `dvc exp run -S` writes
        (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(ValueError, match=f"'{name}' is a tiled recipe but inference.mode is global_view"):
            load_params(tmp_path / "p.yaml")  # a recipe is made for one mode: the mismatch is named
        raw["inference"]["mode"] = "tiled"
        (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
        train = load_params(tmp_path / "p.yaml").train
        assert train.arch.width == width and train.arch.middle_blk_num == 12 and train.ema_decay == 0.999
        assert train.batch_size % train.crops_per_photo == 0 and train.crops_per_photo > 1  # GPUs: fewer decodes
    raw["train"]["profile"], raw["inference"]["mode"] = "cpu", "global_view"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "p.yaml")
    assert params.train.for_mode == params.inference.mode == "global_view" and params.train.tone_prior
    assert params.train.patch_size <= params.inference.working_size <= params.lmdb.whole_photo_side
    raw["train"]["profile"] = "a100"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="'a100' is not one of train.profiles"):
        load_params(tmp_path / "p.yaml")
    raw["train"]["profile"] = "tiny"
    raw["train"]["profiles"]["tiny"]["batchsize"] = 8  # a typo inside a profile is still caught
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="batchsize"):
        load_params(tmp_path / "p.yaml")


def test_section_keys_win_over_the_profile(tmp_path):
    import yaml

    from components.config import load_params
    from tests.conftest import REPO

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"]["iterations"] = 20  # `dvc exp run -S train.iterations=20`
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    train = load_params(tmp_path / "p.yaml").train
    profile = raw["train"]["profiles"][raw["train"]["profile"]]
    assert train.iterations == 20 and train.patch_size == profile["patch_size"]


def test_a_batch_is_whole_photos_worth_of_patches(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"].update({"batch_size": 6, "crops_per_photo": 4})
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="batch_size 6 is not a multiple of train.crops_per_photo 4"):
        load_params(tmp_path / "p.yaml")
