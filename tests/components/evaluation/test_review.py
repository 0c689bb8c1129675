"""The challenger-vs-champion review: gathered in evaluate's pass, attached by register,
written for any two versions by ``brighthouse review``, and working in a real browser."""
import json

import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from components.config import ReviewConfig
from components.evaluate import EvaluatePaths, run_evaluate
from components.evaluation.review import ReviewCollector
from components.lmdb import run_lmdb
from components.register import RegisterPaths, run_register
from tests.browser import browser_page
from tests.conftest import fake_spec, fake_stage_outputs, lmdb_paths


def _register(params, dirs, evaluate=None):
    paths = RegisterPaths(dirs["train"], evaluate or dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"])
    return run_register(params.register_, paths)


@pytest.fixture
def reviewed(pair_folder, params, tmp_path, mlflow_store):
    """Champion v1 (a weaker affine edit), then v2 (a better one) evaluated against it and registered."""
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    _register(params, fake_stage_outputs(tmp_path / "v1", 1 / 0.7, 0.0))
    new = fake_stage_outputs(tmp_path / "v2", 1 / 0.6, 0.0)  # fixture inputs are target * 0.6
    cfg = params.evaluate.model_copy(update={  # affine stand-ins: no pooling variant, and curves fit them too
        "compare_pooling": False, "inference": fake_spec(),
        "gate": params.evaluate.gate.model_copy(update={"min_psnr_gain_over_baseline": -99})})
    run_evaluate(cfg, EvaluatePaths(tmp_path / "lmdb", new["train"], new["export"], tmp_path / "eval"))
    new["register"].rmdir()  # as `dvc repro` leaves it: DVC removes a stage's outputs before running it
    result = _register(params, new, evaluate=tmp_path / "eval")
    return {"result": result, "eval": tmp_path / "eval", "register": new["register"], "lmdb": tmp_path / "lmdb"}


def test_register_attaches_a_review_against_the_champion_linked_from_the_version(reviewed, params):
    data = json.loads((reviewed["eval"] / "review.json").read_text())
    assert data["champion_version"] == "1" and len(data["rows"]) == 2 == len(data["photos"])  # the 2 val pairs
    for row in data["rows"]:  # v2 undoes the fixture's edit, v1 does not: better on every photo
        assert row["challenger_psnr"] > row["champion_psnr"] + 3
        assert row["challenger_ciede2000"] < row["champion_ciede2000"] and row["difference"] > 1
    assert reviewed["result"]["review"] == "review/review-v2-vs-v1.html"
    client, name = MlflowClient(), params.registry.model_name
    mv = client.get_model_version(name, "2")
    assert "review/review-v2-vs-v1.html" in mv.description and f"/runs/{mv.run_id}/artifacts/" in mv.description
    assert [a.path for a in client.list_artifacts(mv.run_id, "review")] == ["review/review-v2-vs-v1.html"]
    from mlflow.artifacts import download_artifacts

    attached = download_artifacts(artifact_uri=f"models:/{name}/2") + "/review/review-v2-vs-v1.html"
    page = open(attached, encoding="utf-8").read()
    assert page == (reviewed["register"] / "review.html").read_text(encoding="utf-8")
    assert "version 2 (challenger) vs version 1 (champion)" in page and "Gate for" not in page
    assert "src='http" not in page and "src=\"http" not in page  # self-contained: images inline
    assert page.count("class=photo ") == 2 and "params.yaml" in page
    assert "contrast error (L*, vs target)" in page and "cast on near-white (CIELAB)" in page  # a retoucher's checks
    for row in data["rows"]:  # v1 (x 1/0.7) leaves the photo darker and flatter than the target; v2 restores it
        assert row["challenger_contrast_error"] < row["champion_contrast_error"]


def test_without_a_champion_there_is_no_review(pair_folder, params, tmp_path, mlflow_store):
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    first = fake_stage_outputs(tmp_path / "v1", 1 / 0.6, 0.0)
    out = tmp_path / "eval"
    out.mkdir()
    (out / "review.json").write_text("{}")  # left from an earlier evaluation
    cfg = params.evaluate.model_copy(update={
        "compare_pooling": False, "inference": fake_spec(),
        "gate": params.evaluate.gate.model_copy(update={"min_psnr_gain_over_baseline": -99})})
    run_evaluate(cfg, EvaluatePaths(tmp_path / "lmdb", first["train"], first["export"], out))
    assert not (out / "review.json").exists()
    assert _register(params, first, evaluate=out)["review"] is None


def test_the_collector_keeps_only_the_most_changed_photos():
    collector = ReviewCollector(ReviewConfig(photos=2, preview_side=64, crop_side=32))
    rng = np.random.default_rng(0)
    for i, shift in enumerate((0.02, 0.2, 0.05, 0.1)):
        gt = rng.random((80, 120, 3)).astype(np.float32)
        out = np.clip(gt + shift, 0, 1)
        collector(f"img{i}", gt, gt, {"psnr": 30.0, "champion_psnr": 29.0, "ciede2000_mean": 1.0, "contrast_error": 1.0,
                                      "cast": 0.5, "blown_highlights": 0.0},
                  {"served": (out, 0.1), "champion": (gt, 0.2)})
    result = collector.result()
    assert [r["image"] for r in result["rows"]] == ["img1", "img3", "img2", "img0"]
    assert [p["image"] for p in result["photos"]] == ["img1", "img3"]
    assert all(set(p["crops"]) == {"input", "champion", "challenger", "target"} for p in result["photos"])


# Pairs of a photo card's blocks (headings, image viewers, thumbnail tables, heatmap, sliders)
# whose boxes intersect, neither inside the other; a viewer's own layers overlap by design.
OVERLAPS = """() => {
  const out = [];
  document.querySelectorAll('.photo').forEach(card => {
    const blocks = [...card.querySelectorAll('h3, h4, .cmp, table.grid, img.heat, input.slider')];
    const box = el => el.getBoundingClientRect();
    for (let i = 0; i < blocks.length; i++) for (let j = i + 1; j < blocks.length; j++) {
      const [a, b] = [blocks[i], blocks[j]];
      if (a.contains(b) || b.contains(a)) continue;
      const [p, q] = [box(a), box(b)];
      const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
      const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (w > 1 && h > 1) out.push(card.id + ': ' + a.outerHTML.slice(0, 40) + ' / ' + b.outerHTML.slice(0, 40));
    }
  });
  return out;
}"""


def test_the_cli_reviews_any_two_versions_and_the_page_works_in_a_browser(reviewed, params, tmp_path):
    from brighthouse.cli import app

    page = tmp_path / "page.html"
    result = CliRunner().invoke(app, ["review", "1", "--against", "2", "--lmdb", str(reviewed["lmdb"]),
                                      "--out", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "version 1 (challenger) vs version 2 (champion)" in text
    with browser_page(tmp_path) as (browser, log):
        browser.goto(page.as_uri())
        slider, top = "input.slider[data-top='prev0']", "#prev0"
        assert browser.eval_on_selector(top, "img => img.style.clipPath") == "inset(0px 50% 0px 0px)"
        browser.fill(slider, "90")
        assert browser.eval_on_selector(top, "img => img.style.clipPath") == "inset(0px 10% 0px 0px)"
        assert browser.eval_on_selector_all("img", "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
        for width in (1280, 800):  # a laptop and a narrow window: no block of a photo card covers another
            browser.set_viewport_size({"width": width, "height": 900})
            assert browser.evaluate(OVERLAPS) == [], f"blocks overlap at {width} px"
        browser.screenshot(path=str(tmp_path / "review-page.png"), full_page=True)
    assert log.errors == []
    assert all(url.startswith(("file:", "data:")) for url in log.requests), log.requests


def test_the_cli_refuses_to_compare_a_version_with_itself(reviewed):
    from brighthouse.cli import app

    result = CliRunner().invoke(app, ["review", "2", "--against", "2", "--lmdb", str(reviewed["lmdb"])])
    assert result.exit_code == 1 and "compared with itself" in result.output


def test_pairs_the_champion_trained_on_are_shown_marked_and_left_out_of_the_gate():
    """A champion is scored by the gate only on pairs it did not train on (its ``champion_psnr``
    is absent elsewhere); the review still shows it there, marked, with its PSNR computed."""
    from components.evaluation.review_page import aggregate_table, photo_table

    collector = ReviewCollector(ReviewConfig(photos=0, preview_side=64, crop_side=32))
    rng = np.random.default_rng(0)
    row = {"psnr": 30.0, "ciede2000_mean": 1.0, "contrast_error": 1.0, "cast": 0.5, "blown_highlights": 0.0}
    for key, counted in (("seen", False), ("unseen", True)):
        gt = rng.random((40, 60, 3)).astype(np.float32)
        collector(key, gt, gt, {**row, **({"champion_psnr": 29.0} if counted else {})},
                  {"served": (np.clip(gt + 0.1, 0, 1), 0.1), "champion": (gt, 0.2)})
    rows = {r["image"]: r for r in collector.result()["rows"]}
    assert rows["seen"]["champion_trained_on"] and rows["seen"]["champion_psnr"] == float("inf")  # it memorised gt
    assert not rows["unseen"]["champion_trained_on"] and rows["unseen"]["champion_psnr"] == 29.0
    assert "The champion trained on 1 of them (marked *)" in aggregate_table(list(rows.values()))
    assert photo_table(list(rows.values()), set()).count(" *</td>") == 1


def test_a_full_size_photo_card_keeps_its_blocks_apart_in_a_browser(tmp_path):
    """At the page's real sizes (1024 px previews, 512 px full-resolution crops of a listing-sized
    photo), no heading, viewer or thumbnail of a card covers another, wide or narrow."""
    from components.evaluation.review_page import write_review_page

    cfg = ReviewConfig(photos=1, preview_side=1024, crop_side=512)
    collector = ReviewCollector(cfg)
    rng = np.random.default_rng(0)
    gt = rng.random((1400, 2100, 3)).astype(np.float32)
    row = {"psnr": 30.0, "champion_psnr": 29.0, "ciede2000_mean": 1.0, "contrast_error": 1.0, "cast": 0.5,
           "blown_highlights": 0.0}
    collector("living_room", gt * 0.6, gt, row, {"served": (gt, 0.1), "champion": (np.clip(gt + 0.1, 0, 1), 0.2)})
    version = {"version": "2", "created": "now", "tags": {"gate": "passed"}, "mode": "global_view", "params": {}}
    page = write_review_page({**collector.result(), "champion_version": "1"}, version, {**version, "version": "1"},
                             "brighthouse", tmp_path / "page.html")
    with browser_page(tmp_path) as (browser, log):
        browser.goto(page.as_uri())
        for width in (1280, 1024, 800):
            browser.set_viewport_size({"width": width, "height": 900})
            assert browser.evaluate(OVERLAPS) == [], f"blocks overlap at {width} px"
        browser.screenshot(path=str(tmp_path / "card.png"), full_page=True)
    assert log.errors == []


def test_the_lineage_table_says_what_each_version_started_from():
    """A fine-tune names its parent beside the champion's own start (the retrain DAG's warm start)."""
    from components.evaluation.review_page import lineage_table

    def version(number: str, started_from: str) -> dict:
        return {"version": number, "created": "now", "mode": "global_view",
                "tags": {"started_from": started_from, "gate": "passed"}}

    table = lineage_table(version("3", "version 2 (1 fine-tune(s) since a full retrain)"),
                          version("2", "scratch: a full retrain was asked for"))
    row = next(r for r in table.split("<tr>") if r.startswith("<td>started_from</td>"))
    assert "version 2 (1 fine-tune(s) since a full retrain)" in row and "scratch: a full retrain" in row
    assert "<td>-</td>" in table  # a tag a version lacks shows as a dash, not an error
