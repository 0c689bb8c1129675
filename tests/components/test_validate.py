import hashlib

import pytest
from PIL import Image

from components.data.imageio import load_rgb
from components.data.pair_checks import dhash
from components.data.pair_suite import CHECKS, validate_folder
from components.records import ValidationReport, read_record
from components.errors import StageFailed
from components.validate import ValidatePaths, main, run_validate
from tests.conftest import REPO


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_good_folder_passes(pair_folder, params):
    report = validate_folder(pair_folder, params.validate_)
    assert report.pairs == 12 and report.failed == 0


def test_each_bad_pair_is_named_with_its_reason(pair_folder, params, tmp_path):
    (pair_folder / "p00_tar.png").unlink()                                    # missing partner
    data = (pair_folder / "p01_src.png").read_bytes()
    (pair_folder / "p01_src.png").write_bytes(data[: len(data) // 3])        # truncated
    Image.open(pair_folder / "p02_tar.png").resize((120, 90)).save(pair_folder / "p02_tar.png")  # wrong size
    Image.new("RGB", (40, 30)).save(pair_folder / "p03_src.png")              # tiny
    Image.new("RGB", (40, 30)).save(pair_folder / "p03_tar.png")
    (pair_folder / "p04_tar.png").write_bytes(b"")                           # zero bytes
    before = _digest(pair_folder)
    report_path = tmp_path / "out" / "report.json"
    fail = params.validate_.model_copy(update={"on_failure": "fail"})
    with pytest.raises(StageFailed) as err:
        run_validate(fail, ValidatePaths(pair_folder, report_path))
    reasons = {f.pair_id: f.reasons for f in validate_folder(pair_folder, params.validate_).failures}
    assert reasons == {
        "p00": ["partner file missing"],
        "p01": ["input does not decode"],
        "p02": ["input and target differ in size"],
        "p03": [f"smaller than {params.validate_.min_side} px on its short side"],
        "p04": ["target does not decode"],
    }
    assert "p01_src.png" in str(err.value) and report_path.exists()
    assert _digest(pair_folder) == before  # validation never touches the user's files


def test_empty_folder_is_an_error(tmp_path, params):
    with pytest.raises(StageFailed, match="no image pairs"):
        validate_folder(tmp_path, params.validate_)


def test_quarantine_leaves_bad_pairs_out_and_keeps_their_files(pair_folder, tmp_path, params):
    (pair_folder / "p05_tar.png").write_bytes(b"")
    before = _digest(pair_folder)
    result = run_validate(params.validate_, ValidatePaths(pair_folder, tmp_path / "r.json"))
    assert result == {"pairs": 12, "accepted": 11, "quarantined": 1, "report": str(tmp_path / "r.json")}
    report = read_record(ValidationReport, tmp_path / "r.json")
    assert "p05" not in report.accepted and len(report.accepted) == 11
    assert _digest(pair_folder) == before
    for i in range(12):
        if i != 5:
            (pair_folder / f"p{i:02d}_src.png").unlink()
    with pytest.raises(StageFailed, match="12 of 12 pairs failed"):  # nothing left to train on
        run_validate(params.validate_, ValidatePaths(pair_folder, tmp_path / "r.json"))


def test_stage_main_exit_codes(pair_folder, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text().replace("on_failure: quarantine", "on_failure: fail"))
    args = ["--params", str(params), "--data", str(pair_folder), "--report", str(tmp_path / "r.json")]
    assert main(args) == 0 and '"pairs": 12' in capsys.readouterr().out
    (pair_folder / "p05_src.png").unlink()
    assert main(args) == 1 and "p05: partner file missing" in capsys.readouterr().err


def test_every_bad_case_of_a_delivery_is_named_with_its_reason(tmp_path, params):
    from tests.conftest import write_pair
    from tests.deliveries import BAD, CONVERTED, GOOD, build_delivery

    write_pair(tmp_path / "data", "old0", seed=100)
    build_delivery(tmp_path / "inbox", tmp_path / "data" / "old0_tar.png")
    before = _digest(tmp_path / "inbox")
    known = {"old0": dhash(load_rgb(tmp_path / "data" / "old0_tar.png"))}
    report = validate_folder(tmp_path / "inbox", params.validate_, known)
    reasons = {f.pair_id: f.reasons for f in report.failures}
    assert reasons == {pair_id: [reason] for pair_id, reason in BAD.items()}
    assert report.accepted == sorted(GOOD + list(CONVERTED))
    for pair_id, kind in CONVERTED.items():
        assert kind in " ".join(report.notes[pair_id])
    assert "compared upright" in report.notes["phone"][0]
    details = {f.pair_id: f.detail for f in report.failures}
    assert "looks like old0" in details["redelivered"] and "looks like new0" in details["twin"]
    assert "20000x20000" in details["bomb"] or "over the limit" in details["bomb"]
    assert "orientation ignored" in details["sideways"]
    assert _digest(tmp_path / "inbox") == before

    strict = params.validate_.model_copy(update={"modes": "reject"})
    rejected = {f.pair_id: f for f in validate_folder(tmp_path / "inbox", strict, known).failures}
    for pair_id, kind in CONVERTED.items():
        assert rejected[pair_id].reasons == [CHECKS["modes_ok"]] and kind in rejected[pair_id].detail


def test_html_report_shows_failing_pairs_with_thumbnails(pair_folder, tmp_path, params):
    (pair_folder / "p03_tar.png").unlink()
    Image.open(pair_folder / "p04_tar.png").resize((120, 90)).save(pair_folder / "p04_tar.png")
    run_validate(params.validate_, ValidatePaths(pair_folder, tmp_path / "report.json"))
    page = (tmp_path / "report.html").read_text()
    assert page.count("<tr><td><b>") == 2 and "p03" in page and "p04" in page
    assert page.count("data:image/jpeg;base64,") == 3  # p03's input, p04's input and target
    assert "missing" in page and "partner file missing" in page and "left out of this data version" in page


def test_edits_that_are_not_of_this_input_are_caught(pair_folder, params):
    import shutil

    import numpy as np

    tar = np.asarray(Image.open(pair_folder / "p05_tar.png"))
    Image.fromarray(np.ascontiguousarray(tar[::-1])).save(pair_folder / "p05_tar.png")    # flipped shot
    shutil.copy(pair_folder / "p01_tar.png", pair_folder / "p06_tar.png")                # swapped, other size
    wide = np.zeros((80, 400, 3), np.uint8)
    Image.fromarray(wide).save(pair_folder / "p07_src.png")
    Image.fromarray(wide).save(pair_folder / "p07_tar.png")                              # 5:1 panorama strip
    shutil.copy(pair_folder / "p02_src.png", pair_folder / "p99_src.png")                # same pair, new id
    shutil.copy(pair_folder / "p02_tar.png", pair_folder / "p99_tar.png")
    report = validate_folder(pair_folder, params.validate_)
    reasons = {f.pair_id: f.reasons for f in report.failures}
    assert reasons["p05"] == ["target does not line up with the input (swapped files, a crop or another shot)"]
    assert reasons["p06"] == ["input and target differ in size"]
    assert reasons["p07"] == ["absurd aspect ratio"]
    assert reasons["p99"] == ["near-duplicate of another pair"]
    assert "looks like p02" in next(f.detail for f in report.failures if f.pair_id == "p99")
    assert set(reasons) == {"p05", "p06", "p07", "p99"}


def test_swapped_target_of_the_same_size_is_caught(tmp_path, params):
    from tests.conftest import write_pair

    for i in range(3):
        write_pair(tmp_path, f"s{i}", size=(120, 90), seed=i)
    (tmp_path / "s1_tar.png").write_bytes((tmp_path / "s2_tar.png").read_bytes())
    reasons = {f.pair_id: f.reasons for f in validate_folder(tmp_path, params.validate_).failures}
    assert "target does not line up" in reasons["s1"][0]


def test_pixel_bombs_are_refused_from_the_header(pair_folder, params):
    cfg = params.validate_.model_copy(update={"max_megapixels": 0.01})  # 10,000 px
    reasons = {f.pair_id: f for f in validate_folder(pair_folder, cfg).failures}
    assert "p03" not in reasons  # 120x80 = 9,600 px
    assert reasons["p04"].reasons == ["input does not decode", "target does not decode"]
    assert "128x80 is over the limit of 10000 pixels" in reasons["p04"].detail


def test_real_photos_rotated_by_exif_at_full_resolution(tmp_path, params):
    from tests.conftest import shared_or_skip

    photo = Image.open(sorted(shared_or_skip("real-inputs").glob("*.jpg"))[0]).convert("RGB")
    raw = photo.transpose(Image.Transpose.ROTATE_90)  # the pixels as a phone stores them ...
    exif = Image.Exif()
    exif[0x0112] = 6                                   # ... and the tag that turns them upright
    brighter = lambda img: img.point(lambda v: min(255, int(v * 1.2) + 5))  # noqa: E731
    raw.save(tmp_path / "phone_src.jpg", quality=92, exif=exif.tobytes())
    brighter(photo).save(tmp_path / "phone_tar.jpg", quality=92)      # edited upright, tag dropped
    raw.save(tmp_path / "sideways_src.jpg", quality=92, exif=exif.tobytes())
    brighter(raw).save(tmp_path / "sideways_tar.jpg", quality=92)     # the editor ignored the tag
    report = validate_folder(tmp_path, params.validate_)
    assert report.accepted == ["phone"] and report.pairs == 2
    [failure] = report.failures
    assert failure.pair_id == "sideways" and failure.reasons == [CHECKS["orientation_ok"]]


def test_the_report_dvc_tracks_is_byte_identical_on_the_same_data(pair_folder, tmp_path, params):
    """report.json is the validate stage's DVC output: the same pairs (one bad) must give the
    same bytes whatever the worker count, or lmdb and everything after it would re-run."""
    from components.validate import ValidatePaths, run_validate

    (pair_folder / "p05_tar.png").write_bytes(b"")
    reports = []
    for name, workers in (("a", 1), ("b", 2)):
        cfg = params.validate_.model_copy(update={"workers": workers})
        run_validate(cfg, ValidatePaths(pair_folder, tmp_path / name / "report.json"))
        reports.append((tmp_path / name / "report.json").read_bytes())
    assert reports[0] == reports[1] and b"p05" in reports[0]


def test_iphone_style_heic_pairs_in_display_p3_pass_even_when_formats_are_refused(pair_folder, params):
    """HEIC is read wherever JPEG is, and a colour profile is not a pixel-format problem."""
    import numpy as np

    from components.data.colour import register_heif
    from tests.colour_profiles import display_p3_icc

    register_heif()
    for pair_id in ("p00", "p01"):
        for role in ("src", "tar"):
            path = pair_folder / f"{pair_id}_{role}.png"
            Image.open(path).convert("RGB").save(path.with_suffix(".heic"), quality=95,
                                                 icc_profile=display_p3_icc())
            path.unlink()
    report = validate_folder(pair_folder, params.validate_.model_copy(update={"modes": "reject"}))
    assert report.pairs == 12 and report.failed == 0
    assert any("Display P3" in note for note in report.notes["p00"])
    assert np.asarray(load_rgb(pair_folder / "p00_src.heic")).shape[2] == 3
