from components.data.pairs import find_pairs
from tests.conftest import write_pair


def test_src_tar_layout_with_a_missing_partner(tmp_path):
    write_pair(tmp_path, "a")
    write_pair(tmp_path, "b")
    (tmp_path / "b_tar.png").unlink()
    (tmp_path / "readme.txt").write_text("ignored")
    pairs = {p.pair_id: p for p in find_pairs(tmp_path)}
    assert set(pairs) == {"a", "b"}
    assert pairs["a"].input.name == "a_src.png" and pairs["a"].target.name == "a_tar.png"
    assert pairs["b"].target is None


def test_input_target_and_lq_gt_folders(tmp_path):
    for inp, tar in (("input", "target"), ("lq", "gt")):
        root = tmp_path / inp
        write_pair(root / "x", "img")
        (root / inp).mkdir()
        (root / tar).mkdir()
        (root / "x" / "img_src.png").rename(root / inp / "0001.png")
        (root / "x" / "img_tar.png").rename(root / tar / "0001.png")
        [pair] = find_pairs(root)
        assert pair.pair_id == "0001" and pair.input.parent.name == inp and pair.target.parent.name == tar


def test_train_jsonl_manifest_lists_pairs_and_unlisted_files_still_pair(tmp_path):
    import json

    import pytest

    from components.data.pairs import ManifestError

    write_pair(tmp_path, "a")
    write_pair(tmp_path, "loose")
    (tmp_path / "a_src.png").rename(tmp_path / "IMG_1.png")
    (tmp_path / "a_tar.png").rename(tmp_path / "IMG_1_edited.png")
    lines = [{"id": "kitchen", "src": "IMG_1.png", "tar": "IMG_1_edited.png", "prompt": "ignored"},
             {"input": "gone_src.jpg", "target": "gone_tar.jpg"}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    pairs = {p.pair_id: p for p in find_pairs(tmp_path)}
    assert set(pairs) == {"kitchen", "gone", "loose"}
    assert pairs["kitchen"].input.name == "IMG_1.png" and pairs["kitchen"].complete
    assert pairs["gone"].input.name == "gone_src.jpg" and not pairs["gone"].complete
    (tmp_path / "train.jsonl").write_text('{"src": "IMG_1.png"}\n')
    with pytest.raises(ManifestError, match=r"train.jsonl:1: needs an input"):
        find_pairs(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"src": "IMG_1.png", "tar": "x.png"}\nnot json\n')
    with pytest.raises(ManifestError, match=r"train.jsonl:2: not valid JSON"):
        find_pairs(tmp_path)
