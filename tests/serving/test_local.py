import numpy as np
import pytest
from PIL import Image

from components.data.colour import register_heif
from components.data.imageio import load_rgb
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
    summary = enhance_paths(inbox, tmp_path / "out", champion, echo=messages.append)
    assert [p.name for p in summary.written] == ["a.png", "b.jpg"]
    assert [src.name for src, _ in summary.failed] == ["broken.jpg"] and "not a readable image" in summary.failed[0][1]
    assert any("broken.jpg" in m and "error" in m for m in messages)
    out = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    np.testing.assert_allclose(out / 255.0, np.clip(img / 255.0 * 0.5 + 0.25, 0, 1), atol=1 / 255 + 1e-6)
    again = enhance_paths(inbox, tmp_path / "out", champion, echo=messages.append)
    assert again.written == [] and len(again.skipped) == 2  # already done
    assert {p.name: p.read_bytes() for p in inbox.iterdir()} == before


@pytest.mark.parametrize("out", [".", "sub", "sub/deeper"])
def test_an_output_folder_inside_the_input_folder_is_refused_before_anything_is_written(champion, tmp_path, out):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (20, 20)).save(photos / "x.png")
    for path in (photos, photos / "x.png"):
        with pytest.raises(ValueError, match="input folder"):
            enhance_paths(path, photos / out, champion)
    assert [p.name for p in photos.iterdir()] == ["x.png"]


def test_names_that_differ_only_in_extension_get_distinct_outputs(champion, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    register_heif()  # to write the HEIC
    for name in ("room.jpg", "room.JPEG", "room.png", "room.webp", "room.HEIC"):
        img = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
        img.save(photos / name, quality=95) if name != "room.webp" else img.save(photos / name, lossless=True)
    summary = enhance_paths(photos, tmp_path / "out", champion)
    assert sorted(p.name for p in summary.written) == ["room.HEIC.jpg", "room.JPEG", "room.jpg", "room.png",
                                                       "room.webp.png"]
    assert Image.open(tmp_path / "out" / "room.JPEG").format == "JPEG"
    assert Image.open(tmp_path / "out" / "room.HEIC.jpg").format == "JPEG"  # a phone photo stays lossy
    assert Image.open(tmp_path / "out" / "room.webp.png").format == "PNG"


def test_the_cli_exits_nonzero_and_lists_what_failed(champion, tmp_path, mlflow_store):
    import subprocess

    from tests.conftest import REPO, tool_env

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (20, 20)).save(photos / "fine.png")
    (photos / "broken.jpg").write_bytes(b"nope")
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    frames[0].save(photos / "anim.png", save_all=True, append_images=frames[1:])  # animated PNG
    r = subprocess.run(["brighthouse", "enhance", str(photos), "--out", str(tmp_path / "out"),
                        "--params", str(REPO / "params.yaml")], cwd=tmp_path,
                       env=tool_env(BRIGHTHOUSE_HOME=str(tmp_path / "state")), capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "1 written" in r.stdout and "2 failed" in r.stdout
    assert "broken.jpg: not a readable image" in r.stderr and "anim.png: an animated" in r.stderr
    inside = subprocess.run(["brighthouse", "enhance", str(photos), "--out", str(photos / "out"),
                             "--params", str(REPO / "params.yaml")], cwd=tmp_path,
                            env=tool_env(BRIGHTHOUSE_HOME=str(tmp_path / "state")), capture_output=True, text=True)
    assert inside.returncode == 2 and "inside the input folder" in inside.stderr and "Traceback" not in inside.stderr


def test_full_size_listing_photo(champion, tmp_path):
    photo = shared_or_skip("real-inputs", "1002_src.jpg")
    enhance_paths(photo, tmp_path / "out", champion)
    assert load_rgb(tmp_path / "out" / "1002_src.jpg").shape == load_rgb(photo).shape
