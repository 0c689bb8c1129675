import hashlib

import pytest
from PIL import Image

from components.ingest import IngestError, ingest
from tests.conftest import write_pair


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def dataset(tmp_path):
    data = tmp_path / "data"
    for i in range(3):
        write_pair(data, f"old{i}", seed=100 + i)
    return data


def bad_delivery(inbox):
    for i in range(3):
        write_pair(inbox, f"new{i}", seed=i)
    write_pair(inbox, "nopartner", seed=7)
    (inbox / "nopartner_tar.png").unlink()
    write_pair(inbox, "cut", seed=8)
    data = (inbox / "cut_tar.png").read_bytes()
    (inbox / "cut_tar.png").write_bytes(data[: len(data) // 2])
    write_pair(inbox, "mismatch", seed=9)
    Image.new("RGB", (200, 90)).save(inbox / "mismatch_src.png")
    write_pair(inbox, "empty", seed=10)
    (inbox / "empty_src.png").write_bytes(b"")


def test_only_good_pairs_land_and_nothing_the_user_had_changes(dataset, tmp_path, params):
    inbox = tmp_path / "inbox"
    bad_delivery(inbox)
    inbox_before, data_before = digest(inbox), digest(dataset)
    summary = ingest(inbox, dataset, params.validate_, tmp_path / "state")
    assert summary["added"] == ["new0", "new1", "new2"]
    assert {f["pair_id"] for f in summary["rejected"]} == {"nopartner", "cut", "mismatch", "empty"}
    after = digest(dataset)
    assert {k: v for k, v in after.items() if k in data_before} == data_before
    assert sorted(set(after) - set(data_before)) == sorted(f"new{i}_{r}.png" for i in range(3) for r in ("src", "tar"))
    assert digest(inbox) == inbox_before
    assert list((tmp_path / "state" / "ingest-reports").glob("*.json"))
    assert not list((tmp_path / "state").glob("ingest-staging-*"))  # staging cleaned up


def test_readding_the_same_batch_is_a_noop(dataset, tmp_path, params):
    inbox = tmp_path / "inbox"
    bad_delivery(inbox)
    ingest(inbox, dataset, params.validate_, tmp_path / "state")
    before = digest(dataset)
    summary = ingest(inbox, dataset, params.validate_, tmp_path / "state")
    assert summary["added"] == [] and summary["unchanged"] == ["new0", "new1", "new2"]
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
