"""Evaluation streams the val split: the images held at once do not grow with its size."""
import weakref

import numpy as np
import pytest

import components.evaluate as evaluate
from components.evaluation.scoring import Runner, score_split, val_pairs
from components.lmdb import PairedLmdbWriter, encode_png


def write_val(lmdb_dir, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    writer = PairedLmdbWriter(lmdb_dir / "val", 1)
    for i in range(n):
        gt = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        lq = (gt * 0.6).astype(np.uint8)
        writer.write([(f"pair{i:03d}", encode_png(lq, 1), encode_png(gt, 1), gt.shape)])
    writer.close()


class Tracker:
    """Counts the pair images (inputs, targets) still alive each time a new pair is decoded."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref] = []
        self.most_alive = 0

    def wrap(self, pairs):
        for key, lq, gt in pairs:
            self.most_alive = max(self.most_alive, sum(r() is not None for r in self.refs))
            self.refs += [weakref.ref(lq), weakref.ref(gt)]
            yield key, lq, gt


@pytest.mark.parametrize("n", [8, 40])
def test_evaluate_holds_a_bounded_number_of_images_whatever_the_split_size(tmp_path, params, monkeypatch, n):
    write_val(tmp_path / "lmdb", n)
    tracker = Tracker()
    monkeypatch.setattr(evaluate, "val_pairs", lambda d: tracker.wrap(val_pairs(d)))
    champion = Runner("champion", lambda b: b / 0.61, params.inference.model_copy(update={"mode": "tiled"}))
    result = evaluate.evaluate_model(lambda b: b / 0.6, tmp_path / "lmdb", params.evaluate,
                                     extra={"champion_version": "7"}, others=(champion,))
    assert result["images"] == n and len(tracker.refs) == 2 * n
    # the pair being scored plus the worst-image previews (here the images themselves: they are small)
    assert tracker.most_alive <= 2 * (evaluate.WORST + 1), tracker.most_alive
    assert {"champion_psnr", "psnr"} <= set(result) and result["champion_psnr"] < result["psnr"]


def test_every_runner_scores_the_same_decoded_pair(tmp_path, params):
    write_val(tmp_path / "lmdb", 5)
    spec = params.inference.model_copy(update={"mode": "tiled"})
    seen: dict[str, int] = {}

    def counting(name, fn):
        def run(batch):
            seen[name] = seen.get(name, 0) + 1
            return fn(batch)
        return run

    rows, worst = score_split(val_pairs(tmp_path / "lmdb"), Runner("served", counting("served", lambda b: b), spec),
                              [Runner("fp16", counting("fp16", lambda b: b), spec)], keep_worst=2)
    assert [r["image"] for r in rows] == [f"pair{i:03d}" for i in range(5)]
    assert all(r["fp16_psnr"] == pytest.approx(r["psnr"]) for r in rows) and seen["served"] == seen["fp16"]
    assert len(worst) == 2 and worst[0][0] in {r["image"] for r in rows}
