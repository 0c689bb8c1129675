"""The README's pipeline, for real: ``dvc repro`` on the sample data in a fresh project copy."""
import json
import subprocess

import pytest
import yaml

from tests.pipeline.conftest import dvc, registry, set_param

pytestmark = pytest.mark.slow


def check_seams(onnx_path):
    """Tiled (as served) vs whole-image output of the trained model on a real listing photo:
    close overall, and no edge where tiles meet (the output's gradient across each tile
    boundary is what the whole-image output has there)."""
    import numpy as np
    from PIL import Image

    from components.evaluation.metrics import psnr
    from components.inference.onnx_session import ort_runner
    from components.inference.tiling import enhance_tiled, iter_tiles
    from tests.conftest import shared_or_skip

    img = Image.open(sorted(shared_or_skip("real-inputs").glob("*.jpg"))[0])
    img.thumbnail((768, 768))
    photo = np.asarray(img, dtype=np.float32) / 255
    run = ort_runner(onnx_path)
    whole = np.clip(run(photo.transpose(2, 0, 1)[None].copy())[0].transpose(1, 2, 0), 0, 1)
    tiled = enhance_tiled(photo, run, 256, 32, 4)
    assert psnr(tiled, whole) > 40
    h, w = photo.shape[:2]
    for axis, starts in ((1, {x for _, x, _, _ in iter_tiles(h, w, 256, 32)}),
                         (0, {y for y, _, _, _ in iter_tiles(h, w, 256, 32)})):
        other = (0, 2) if axis == 1 else (1, 2)
        grad_tiled = np.abs(np.diff(tiled, axis=axis)).mean(axis=other)
        grad_whole = np.abs(np.diff(whole, axis=axis)).mean(axis=other)
        for start in sorted(starts)[1:]:  # a seam would be a step where a tile begins or its blend ends
            for edge in (start - 1, start, start + 31, start + 32):
                assert grad_tiled[edge] < 1.1 * grad_whole[edge], (axis, edge)


def test_repro_registers_a_gated_model_then_is_up_to_date_and_gates_hold(project_copy, monkeypatch, tmp_path):
    # `make demo` as it is, but each fold model trains 10 iterations, not 250 (about 1.3 s each on
    # 2 cores): CI pays for three of them, and this test holds the pipeline and its gates, whichever
    # way the fold models' check goes, not the recipe (bench/README.md does)
    set_param(project_copy, "train", ("fold_iterations",), 10)
    r = dvc(project_copy, "repro")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    metrics = json.loads((project_copy / "artifacts/evaluate/metrics.json").read_text())
    assert metrics["gate_passed"] and metrics["psnr"] > metrics["identity_psnr"] + 2
    # TLC's effect is measured on every model: the other pooling, on evaluate.variant_pairs pairs
    assert metrics["pooling"] == "global" and abs(metrics["tlc_gain_db"]) < 5 and metrics["variant_pairs"] == 8
    # the FP16 export's quality loss is measured, and decides whether it ships with the version
    assert isinstance(metrics["fp16_loss_db"], float) and metrics["fp16_ok"] == (metrics["fp16_loss_db"] <= 0.05)
    client = registry(project_copy)
    aliases = {k: str(v) for k, v in client.get_registered_model("brighthouse").aliases.items()}
    assert aliases == {"champion": "1", "challenger": "1"}
    mv = client.get_model_version("brighthouse", "1")
    data_md5 = yaml.safe_load((project_copy / "data.dvc").read_text())["outs"][0]["md5"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_copy, capture_output=True, text=True).stdout.strip()
    assert mv.tags["data_version"] == data_md5 and mv.tags["git_commit"] == head
    # lineage a person can act on: the code is the commit's (dvc.lock and data.dvc, which the run
    # rewrote, do not count), and each stage's inputs match what DVC recorded in dvc.lock
    from components.registry.lineage import UPSTREAM, inputs_digest, stage_inputs
    assert mv.tags["code_modified"] == "none"
    recorded = stage_inputs(project_copy / "dvc.lock")
    assert {f"stage_{s}": mv.tags[f"stage_{s}"] for s in UPSTREAM} == {
        f"stage_{s}": inputs_digest(recorded[s]) for s in UPSTREAM}
    assert recorded["train"]["params"]["params.yaml"]["inference"]["mode"] == "global_view"  # what train ran with
    assert float(mv.tags["val_psnr"]) == pytest.approx(metrics["psnr"], abs=1e-3)

    # the default profile serves the fast mode: the whole photo at working size over the preset
    assert metrics["inference"]["mode"] == "global_view"
    assert set(metrics["baseline"].split("/")) <= {"curves", "histogram", "blend", "grey_blend"}
    # the version records what it trained on: a later gate compares it on other pairs only
    splits = json.loads((project_copy / "artifacts/lmdb/splits.json").read_text())
    # a small set cross-validates: every pair trains, and is scored by the fold model that did not see it
    assert sorted(splits["train"]) == sorted(splits["val"]) and len(splits["train"]) == 14
    assert metrics["validation"] == "cross_validation" and metrics["images"] == 14 and len(metrics["folds"]) == 3
    from components.records import NetworkVsPreset
    from components.registry.model_store import fetch
    monkeypatch.setenv("BRIGHTHOUSE_HOME", str(project_copy / ".brighthouse"))  # the project's own store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ref = fetch("brighthouse", "champion", "1", cache_root=tmp_path / "cache")
    assert sorted(ref.metadata.train_pairs) == sorted(splits["train"])
    assert mv.tags["validation"].startswith("3-fold cross-validation over 14 pairs")
    # the fold models against their presets, on the pairs they did not see, decided what ships
    run = json.loads((project_copy / "artifacts/train/run.json").read_text())
    check = NetworkVsPreset.model_validate(run["network_vs_preset"])
    # some share of the network (train.residual_scales) beat the preset on the folds, or none did
    network_won = check.pairs == 14 and check.scaled_psnr[check.residual_scale] > check.preset_psnr
    assert (run["ships"], ref.metadata.networks) == (("network", 1) if network_won else ("preset", 0))
    assert ("ships" in mv.tags) == (not network_won)

    again = dvc(project_copy, "repro")
    assert again.returncode == 0 and "Data and pipelines are up to date" in again.stdout
    shown = dvc(project_copy, "metrics", "show", "--json")
    assert '"psnr"' in shown.stdout

    # An impossible floor: evaluate fails, register never runs, the registry is unchanged.
    set_param(project_copy, "evaluate", ("gate", "min_psnr"), 99.0)
    failed = dvc(project_copy, "repro")
    assert failed.returncode != 0 and "failed the gate" in failed.stderr
    assert [str(v.version) for v in client.search_model_versions("name='brighthouse'")] == ["1"]

    # A broken pair under on_failure: fail: validate names it and nothing downstream runs.
    set_param(project_copy, "evaluate", ("gate", "min_psnr"), 0.0)
    set_param(project_copy, "validate", ("on_failure",), "fail")
    dvc(project_copy, "unprotect", "data")
    (project_copy / "data" / "coffee_0_tar.jpg").unlink()
    broken = dvc(project_copy, "repro")
    assert broken.returncode != 0 and "coffee_0: partner file missing" in broken.stderr
