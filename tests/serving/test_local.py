import numpy as np
import pytest
from PIL import Image

from components.imageio import load_rgb
from serving.local import enhance_paths
from tests.conftest import shared_or_skip
from tests.serving.conftest import register_affine


@pytest.fixture
def champion(params, tmp_path, mlflow_store):
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    return params.serve


def test_enhances_a_folder_skips_done_files_and_reports_bad_ones(champion, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(img).save(inbox / "a.png")
    Image.fromarray(img).save(inbox / "b.jpg", quality=95)
    (inbox / "broken.jpg").write_bytes(b"nope")
    before = {p.name: p.read_bytes() for p in inbox.iterdir()}
    messages = []
    assert enhance_paths(inbox, tmp_path / "out", champion, echo=messages.append) == 2
    assert any("broken.jpg" in m and "error" in m for m in messages)
    out = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    np.testing.assert_allclose(out / 255.0, np.clip(img / 255.0 * 0.5 + 0.25, 0, 1), atol=1 / 255 + 1e-6)
    assert enhance_paths(inbox, tmp_path / "out", champion, echo=messages.append) == 0  # already done
    assert {p.name: p.read_bytes() for p in inbox.iterdir()} == before


def test_refuses_to_overwrite_its_input(champion, tmp_path):
    Image.new("RGB", (20, 20)).save(tmp_path / "x.png")
    with pytest.raises(ValueError, match="overwrite its input"):
        enhance_paths(tmp_path / "x.png", tmp_path, champion)


def test_full_size_listing_photo(champion, tmp_path):
    photo = shared_or_skip("real-inputs", "1002_src.jpg")
    enhance_paths(photo, tmp_path / "out", champion)
    assert load_rgb(tmp_path / "out" / "1002_src.jpg").shape == load_rgb(photo).shape
