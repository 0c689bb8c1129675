import hashlib
from pathlib import Path

import pytest

from components.data.ingest import IngestError, ingest
from tests.conftest import write_pair
from tests.deliveries import BAD, CONVERTED, GOOD, build_delivery


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def dataset(tmp_path):
    data = tmp_path / "data"
    for i in range(3):
        write_pair(data, f"old{i}", seed=100 + i)
    return data


def test_only_good_pairs_land_and_nothing_the_user_had_changes(dataset, tmp_path, params):
    inbox = tmp_path / "inbox"
    build_delivery(inbox, dataset / "old0_tar.png")
    inbox_before, data_before = digest(inbox), digest(dataset)
    summary = ingest(inbox, dataset, params.validate_, tmp_path / "state")
    assert summary["added"] == sorted(GOOD + list(CONVERTED))
    assert {f["pair_id"] for f in summary["rejected"]} == set(BAD)
    after = digest(dataset)
    assert {k: v for k, v in after.items() if k in data_before} == data_before
    added = {name.rsplit("_", 1)[0] for name in set(after) - set(data_before)}
    assert added == set(summary["added"])
    assert digest(inbox) == inbox_before
    report_dir = Path(summary["report"]).parent
    assert {"report.json", "report.html", "summary.json"} <= {p.name for p in report_dir.iterdir()}
    kept = report_dir / "quarantine"
    assert (kept / "swapped" / "swapped_tar.png").read_bytes() == (inbox / "swapped_tar.png").read_bytes()
    assert not list((tmp_path / "state").glob("ingest-staging-*"))  # staging cleaned up


def test_fail_policy_refuses_the_whole_delivery(dataset, tmp_path, params):
    inbox = tmp_path / "inbox"
    build_delivery(inbox, dataset / "old0_tar.png")
    before = digest(dataset)
    strict = params.validate_.model_copy(update={"on_failure": "fail"})
    with pytest.raises(IngestError, match="nothing was added") as err:
        ingest(inbox, dataset, strict, tmp_path / "state")
    assert all(f"{pair_id}:" in str(err.value) for pair_id in BAD)
    assert digest(dataset) == before


def test_readding_the_same_batch_is_a_noop(dataset, tmp_path, params):
    inbox = tmp_path / "inbox"
    build_delivery(inbox, dataset / "old0_tar.png")
    ingest(inbox, dataset, params.validate_, tmp_path / "state")
    before = digest(dataset)
    summary = ingest(inbox, dataset, params.validate_, tmp_path / "state")
    assert summary["added"] == [] and summary["unchanged"] == sorted(GOOD + list(CONVERTED))
    assert {f["pair_id"] for f in summary["rejected"]} == set(BAD)  # stored pairs are not 'duplicates'
    assert digest(dataset) == before


def test_same_id_with_other_content_is_refused_unless_replace(dataset, tmp_path, params):
    inbox = tmp_path / "inbox"
    write_pair(inbox, "old1", seed=999)  # same id as a stored pair, different pixels
    write_pair(inbox, "fresh", seed=5)
    before = digest(dataset)
    with pytest.raises(IngestError, match="old1"):
        ingest(inbox, dataset, params.validate_, tmp_path / "state")
    assert digest(dataset) == before  # refused as a whole: 'fresh' was not added either
    summary = ingest(inbox, dataset, params.validate_, tmp_path / "state", replace=True)
    assert summary["replaced"] == ["old1"] and summary["added"] == ["fresh"]
    assert (dataset / "old1_src.png").read_bytes() == (inbox / "old1_src.png").read_bytes()


def test_input_target_folders_are_normalised_to_src_tar(dataset, tmp_path, params):
    inbox = tmp_path / "delivery"
    write_pair(tmp_path / "x", "room", seed=3)
    (inbox / "input").mkdir(parents=True)
    (inbox / "target").mkdir()
    (tmp_path / "x" / "room_src.png").rename(inbox / "input" / "room.png")
    (tmp_path / "x" / "room_tar.png").rename(inbox / "target" / "room.png")
    assert ingest(inbox, dataset, params.validate_, tmp_path / "state")["added"] == ["room"]
    assert (dataset / "room_src.png").exists() and (dataset / "room_tar.png").exists()


def test_move_removes_only_what_is_safely_stored(dataset, tmp_path, params):
    from components.data.ingest import remove_ingested

    inbox = tmp_path / "inbox"
    build_delivery(inbox, dataset / "old0_tar.png")
    summary = ingest(inbox, dataset, params.validate_, tmp_path / "state")
    (dataset / "new1_tar.png").write_bytes(b"changed after ingest")  # its inbox copy must survive
    removed = {p.name for p in remove_ingested(inbox, dataset, summary)}
    assert "new0_src.png" in removed and "phone_src.jpg" in removed
    assert (inbox / "new1_tar.png").exists() and (inbox / "new1_src.png").exists()
    assert all((inbox / f).exists() for f in ("swapped_src.png", "swapped_tar.png", "nopartner_src.png"))


def test_a_delivery_of_iphone_heic_pairs_lands_as_heic(dataset, tmp_path, params):
    from PIL import Image

    from components.data.colour import register_heif

    register_heif()
    inbox = tmp_path / "inbox"
    write_pair(inbox, "room", seed=7)
    for role in ("src", "tar"):
        png = inbox / f"room_{role}.png"
        Image.open(png).convert("RGB").save(inbox / f"room_{role}.HEIC", quality=95)
        png.unlink()
    summary = ingest(inbox, dataset, params.validate_, tmp_path / "state")
    assert summary["added"] == ["room"]
    assert (dataset / "room_src.heic").read_bytes() == (inbox / "room_src.HEIC").read_bytes()
