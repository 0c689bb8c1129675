"""Cross-validation's gate: no score comes from a pair its model trained on, the champion's included."""
import numpy as np
import pytest

from components.config import InferenceSpec, TilingConfig
from components.data.lmdb_read import iter_lmdb
from components.data.splits import read_splits
from components.evaluate import comparable_pairs, evaluate_folds
from components.evaluation.cross_validation import Fold
from components.evaluation.scoring import Runner
from components.lmdb import run_lmdb
from components.model.presets import fit_preset
from tests.conftest import lmdb_paths

WHOLE = InferenceSpec(mode="tiled", tiling=TilingConfig(tile=1024, overlap=0, batch=1))  # one tile: the photo


def memoriser(train_lmdb):
    """A model that has learnt its training pairs by heart and knows nothing else: the target for
    an input it trained on, the input itself for any other."""
    known = {lq.tobytes(): gt for (_, lq), (_, gt) in zip(iter_lmdb(train_lmdb / "lq.lmdb"),
                                                         iter_lmdb(train_lmdb / "gt.lmdb"))}

    def run(batch: np.ndarray) -> np.ndarray:
        out = [known.get(np.ascontiguousarray(x.transpose(1, 2, 0)).tobytes()) for x in batch]
        return np.stack([x if o is None else o.transpose(2, 0, 1) for x, o in zip(batch, out)])

    return run


@pytest.fixture
def cross_validated(pair_folder, params, tmp_path):
    cfg = params.lmdb.model_copy(update={"cross_validate_below": 60})
    run_lmdb(cfg, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    lmdb = tmp_path / "lmdb"
    folds = []
    for i in range(3):
        d = lmdb / "folds" / str(i)
        preset = fit_preset(zip((x for _, x in iter_lmdb(d / "train_whole" / "lq.lmdb")),
                                (x for _, x in iter_lmdb(d / "train_whole" / "gt.lmdb"))))
        folds.append(Fold(d, d / "train", preset))  # "onnx": the fold's training pairs, for the memoriser
    return lmdb, folds


def test_every_pair_is_scored_once_by_a_model_that_never_saw_it(cross_validated, params):
    lmdb, folds = cross_validated
    gate = params.evaluate.model_copy(update={"compare_pooling": False})
    result = evaluate_folds(folds, gate, WHOLE, None, runner_for=memoriser)
    rows = result["per_image"]
    assert sorted(r["image"] for r in rows) == [f"p{i:02d}" for i in range(12)]
    # a memorised pair would score infinite PSNR; every score is the untouched input's
    assert all(r["psnr"] == pytest.approx(r["identity_psnr"], abs=1e-3) for r in rows)
    assert [f["pairs"] for f in result["folds"]] == [4, 4, 4]

    # the memoriser scored on its own training pairs (the mistake this guards against) is perfect
    cheat = evaluate_folds([Fold(lmdb / "folds" / "0", lmdb / "folds" / "1" / "train", folds[0].preset)], gate,
                           WHOLE, None, runner_for=memoriser)
    assert all(r["psnr"] > 60 for r in cheat["per_image"])


def test_the_champion_is_compared_only_on_pairs_it_did_not_train_on(cross_validated, params):
    lmdb, folds = cross_validated
    split = read_splits(lmdb / "splits.json")
    trained_on = split.folds[0] + split.folds[1][:2]  # an earlier model, on 6 of these 12 pairs
    champion_lmdb = lmdb / "champion-train"
    from components.data.pairs import find_pairs
    from components.lmdb import write_split

    pairs = [p for p in find_pairs(lmdb.parent / "pairs") if p.pair_id in trained_on]
    write_split(pairs, {"whole": champion_lmdb}, params.lmdb, int(params.validate_.max_megapixels * 1e6))
    only = frozenset(comparable_pairs(split, trained_on))
    champion = Runner("champion", memoriser(champion_lmdb), WHOLE, only=only)
    gate = params.evaluate.model_copy(update={"compare_pooling": False})
    result = evaluate_folds(folds, gate, WHOLE, champion, extra={"champion_version": "1"}, runner_for=memoriser)
    compared = [r for r in result["per_image"] if "champion_psnr" in r]
    assert sorted(r["image"] for r in compared) == sorted(set(split.val) - set(trained_on))
    assert all(r["champion_psnr"] == pytest.approx(r["identity_psnr"], abs=1e-3) for r in compared)
    assert result["champion_pairs"] == 6 and result["psnr_on_champion_pairs"] == pytest.approx(
        np.mean([r["psnr"] for r in compared]))
    # a champion that trained on all of them is not compared at all; one that does not say what
    # it trained on is compared on a hash split's val pairs only
    assert comparable_pairs(split, split.train) == [] and comparable_pairs(split, None) == []
