import os

import pytest

from components.data.deliveries import COMPLETE, READY, deliver, ingest_deliveries, pending_deliveries
from tests.conftest import write_pair


def test_only_complete_deliveries_are_taken_once(tmp_path, params):
    inbox, data, state = tmp_path / "inbox", tmp_path / "data", tmp_path / "state"
    write_pair(tmp_path / "batch1", "a1", seed=1)
    write_pair(tmp_path / "batch1", "a2", seed=2)
    delivered = deliver(tmp_path / "batch1", inbox)
    assert (delivered / COMPLETE).exists() and (inbox / READY).exists()
    write_pair(inbox / "half-copied", "b1", seed=3)  # no marker yet: must not be read
    assert pending_deliveries(inbox, state) == [delivered]

    result = ingest_deliveries(inbox, data, params.validate_, state)
    assert result["changed_pairs"] == 2 and result["deliveries"][0]["added"] == ["a1", "a2"]
    assert sorted(p.name for p in data.iterdir()) == ["a1_src.png", "a1_tar.png", "a2_src.png", "a2_tar.png"]
    assert pending_deliveries(inbox, state) == []  # the ledger remembers it
    assert ingest_deliveries(inbox, data, params.validate_, state)["deliveries"] == []

    (inbox / "half-copied" / COMPLETE).touch()
    os.utime(delivered / COMPLETE, ns=(1, 1))  # a re-touched marker means "take it again"
    assert {p.name for p in pending_deliveries(inbox, state)} == {"half-copied", "batch1"}


def test_a_refused_delivery_is_recorded_and_the_others_still_go_in(tmp_path, params):
    inbox, data, state = tmp_path / "inbox", tmp_path / "data", tmp_path / "state"
    write_pair(data, "x", seed=1)
    write_pair(inbox / "conflict", "x", seed=99)  # same id, other pixels: refused without --replace
    write_pair(inbox / "good", "y", seed=5)
    write_pair(inbox / "allbad", "z", seed=6)
    (inbox / "allbad" / "z_tar.png").write_bytes(b"")
    for name in ("conflict", "good", "allbad"):
        (inbox / name / COMPLETE).touch()
    result = ingest_deliveries(inbox, data, params.validate_, state)
    by_name = {d["delivery"]: d for d in result["deliveries"]}
    assert "already exist with different content" in by_name["conflict"]["refused"]
    assert by_name["good"]["added"] == ["y"] and by_name["allbad"]["rejected"] == ["z"]
    assert result["changed_pairs"] == 1


def test_a_delivery_folder_symlinked_from_elsewhere_is_refused_unread(tmp_path, params):
    inbox, data, state = tmp_path / "inbox", tmp_path / "data", tmp_path / "state"
    write_pair(tmp_path / "private", "p", seed=4)
    (tmp_path / "private" / COMPLETE).touch()
    inbox.mkdir()
    (inbox / "sneaky").symlink_to(tmp_path / "private", target_is_directory=True)
    result = ingest_deliveries(inbox, data, params.validate_, state)
    assert "symlink" in result["deliveries"][0]["refused"] and result["changed_pairs"] == 0
    assert not data.exists()


def test_a_delivery_name_must_be_a_plain_name(tmp_path):
    write_pair(tmp_path / "batch", "a", seed=1)
    for name in ("../outside", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="not a plain name"):
            deliver(tmp_path / "batch", tmp_path / "inbox", name)
    assert not (tmp_path / "outside").exists()
