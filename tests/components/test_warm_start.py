"""Retraining that builds on a registered version: what it loads, what it records, when it refuses."""
import json
import shutil

import pytest
import torch

from components.data.splits import SPLITS_FILE, SplitRecord, read_splits
from components.lmdb import run_lmdb
from components.register import RegisterPaths, run_register
from components.train import TrainPaths, run_train
from components.warm_start import choose_start, resolve_start, warm_config, weights_path
from tests.components.test_train import tiny
from tests.conftest import fake_stage_outputs, in_mode, lmdb_paths

pytestmark = pytest.mark.slow
GLOBAL_VIEW = {"mode": "global_view", "working_size": 96}


def register(params, train_dir, lmdb_dir, root):
    """Register the model trained into ``train_dir`` (its real run, start.json and split; the
    gate's and export's outputs faked: this is about lineage, not scores)."""
    dirs = fake_stage_outputs(root, 1.0, 0.0, inference=GLOBAL_VIEW)
    return run_register(params.register_, RegisterPaths(train_dir, dirs["evaluate"], dirs["export"],
                                                        dirs["register"], lmdb_dir))


@pytest.fixture
def parent(pair_folder, params, tmp_path, mlflow_store):
    """Version 1 (the champion): a network over the preset in global view, trained and registered."""
    params = tiny(params)
    cfg = in_mode(params.train, "global_view", working_size=96).model_copy(update={
        "tone_prior": True, "patch_size": 48, "iterations": 8})
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "v1"))
    assert register(params, tmp_path / "v1", tmp_path / "lmdb", tmp_path / "fake1")["version"] == "1"
    return params, cfg


def test_a_fine_tune_starts_from_the_versions_weights_and_the_new_version_names_it(parent, tmp_path):
    from mlflow import MlflowClient

    from components.registry.model_store import fetch

    params, cfg = parent
    warm = cfg.model_copy(update={"start_from": "1", "lr": 1e-9, "eta_min": 1e-10})  # 2 steps that change nothing
    result = run_train(warm, TrainPaths(tmp_path / "lmdb", tmp_path / "v2"))
    start = json.loads((tmp_path / "v2" / "start.json").read_text())
    split = read_splits(tmp_path / "lmdb" / SPLITS_FILE)
    assert start["version"] == "1" and start["fine_tunes"] == 1 and start["iterations"] == 2
    assert start["inherited_pairs"] == sorted(split.train)
    # the network's weights are version 1's (not a fresh start); the preset is the one fitted now
    before, after = (torch.load(tmp_path / v / "model.pth", weights_only=True)["params"] for v in ("v1", "v2"))
    assert torch.allclose(before["body.intro.weight"], after["body.intro.weight"], atol=1e-6)
    assert before["body.ending.weight"].abs().sum() > 0  # version 1 learned a residual, and it was kept
    assert torch.allclose(before["body.ending.weight"], after["body.ending.weight"], atol=1e-6)
    assert not any(k.startswith(("curves.", "histogram.", "mix")) for k in torch.load(weights_path(warm))["params"])
    assert MlflowClient().get_run(result.run_id).data.tags["brighthouse.started_from"] == "1"

    assert register(params, tmp_path / "v2", tmp_path / "lmdb", tmp_path / "fake2")["version"] == "2"
    ref = fetch("brighthouse", "", "2", cache_root=tmp_path / "cache")
    assert (ref.metadata.started_from, ref.metadata.fine_tunes) == ("1", 1)
    assert ref.tags["started_from"].startswith("version 1 (1 fine-tune(s)")
    assert ref.metadata.train_pairs == sorted(split.train)  # its own and version 1's (the same pairs here)
    first = fetch("brighthouse", "", "1", cache_root=tmp_path / "cache")
    assert first.metadata.started_from is None and first.tags["started_from"].startswith("scratch: ")
    from components.registry.versions import list_versions  # what `brighthouse models` prints

    assert {r["version"]: r["started_from"] for r in list_versions("brighthouse")} == {"2": "version 1", "1": "scratch"}


def test_a_start_that_would_be_scored_on_its_own_pairs_or_does_not_fit_is_from_scratch_and_the_dags_choice(
        parent, tmp_path):
    _, cfg = parent
    split = read_splits(tmp_path / "lmdb" / SPLITS_FILE)
    start = cfg.model_copy(update={"start_from": "1"})
    assert resolve_start(start, split).version == "1"
    cases = [
        (cfg, split, "a full retrain"),
        (cfg.model_copy(update={"start_from": "7"}), split, "no version 7"),
        # honesty: a pair version 1 learned from is held out now; a cross-validated set scores every pair
        (start, split.model_copy(update={"val": [*split.val, split.train[0]]}), "held out now"),
        (start, SplitRecord(scheme="cross_validation", train=split.train, val=split.train, folds=[split.train]),
         "cross-validated"),
        # fit: the network, its kind and its mode must be the version's
        (start.model_copy(update={"arch": start.arch.model_copy(update={"width": 16})}), split, "another architecture"),
        (start.model_copy(update={"tone_prior": False}), split, "a network over a preset"),
        (in_mode(start, "tiled"), split, "serves global_view; this training is for tiled"),
    ]
    for asked, held_out, why in cases:
        record = resolve_start(asked, held_out)
        assert record.version is None and why in record.reason, (why, record.reason)
        assert (record.iterations, record.lr) == (asked.iterations, asked.lr)  # the scratch recipe
    assert warm_config(start).iterations == 2 and warm_config(start).lr == pytest.approx(start.lr * 0.5)
    the_dag_fine_tunes_the_champion_until_a_full_retrain_is_due_or_asked(tmp_path)


def the_dag_fine_tunes_the_champion_until_a_full_retrain_is_due_or_asked(tmp_path):
    import yaml

    from tests.conftest import REPO

    params_file = tmp_path / "params.yaml"
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert choose_start(REPO / "params.yaml", full_retrain=False).start_from == ""  # the default: full retrains
    raw["train"]["warm_start"]["for_deliveries"] = True
    params_file.write_text(yaml.safe_dump(raw))
    assert choose_start(params_file, full_retrain=False).start_from == "1"  # the champion, fine-tuned
    assert "asked" in choose_start(params_file, full_retrain=True).reason
    for key, value, why in (("full_every", 1, "every 1th training"), ("for_deliveries", False, "for_deliveries")):
        edited = {**raw, "train": {**raw["train"], "warm_start": {**raw["train"]["warm_start"], key: value}}}
        params_file.write_text(yaml.safe_dump(edited))
        choice = choose_start(params_file, full_retrain=False)
        assert choice.start_from == "" and why in choice.reason


def test_the_dags_choice_goes_into_params_yaml_keeping_its_comments(tmp_path):
    from components.pipeline import set_param
    from tests.conftest import REPO

    params_file = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params_file)
    original = params_file.read_text()
    assert set_param(params_file, "train.start_from", "3") and not set_param(params_file, "train.start_from", "3")
    changed = [(a, b) for a, b in zip(original.splitlines(), params_file.read_text().splitlines(), strict=True) if a != b]
    assert changed == [('  start_from: ""', '  start_from: "3"')]
    with pytest.raises(KeyError, match=r"train\.start_form"):
        set_param(params_file, "train.start_form", "3")
