import hashlib

import pytest
from PIL import Image

from components.stage import StageFailed
from components.validate import ValidatePaths, main, run_validate, validate_folder
from tests.conftest import REPO


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_good_folder_passes(pair_folder, params):
    report = validate_folder(pair_folder, params.validate_)
    assert report["pairs"] == 12 and report["failed"] == 0


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
    with pytest.raises(StageFailed) as err:
        run_validate(params.validate_, ValidatePaths(pair_folder, report_path))
    reasons = {f["pair_id"]: f["reasons"] for f in validate_folder(pair_folder, params.validate_)["failures"]}
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


def test_stage_main_exit_codes(pair_folder, tmp_path, capsys):
    args = ["--params", str(REPO / "params.yaml"), "--data", str(pair_folder), "--report", str(tmp_path / "r.json")]
    assert main(args) == 0 and '"pairs": 12' in capsys.readouterr().out
    (pair_folder / "p05_src.png").unlink()
    assert main(args) == 1 and "p05: partner file missing" in capsys.readouterr().err
