"""A delivery is input from outside: ingest reads and writes only inside its own folders.

Each test builds a hostile or careless delivery, runs the real ``ingest`` and checks that
nothing outside the inbox was read into the dataset, the quarantine or the report, and
nothing outside ``data/`` and the state folder was written.
"""
import json
import os
from pathlib import Path

import pytest

from components.data.ingest import IngestError, ingest
from tests.conftest import write_pair

SECRET = b"root:x:0:0:secret line that must never be copied\n"


@pytest.fixture
def world(tmp_path):
    """An inbox with one good pair, an empty dataset, and files elsewhere on disk."""
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    write_pair(inbox, "good", seed=1)
    write_pair(elsewhere, "photo", seed=2)
    (elsewhere / "secret.txt").write_bytes(SECRET)
    return {"inbox": inbox, "data": tmp_path / "data", "state": tmp_path / "state", "elsewhere": elsewhere,
            "root": tmp_path}


def run(world, params, inbox=None):
    return ingest(inbox or world["inbox"], world["data"], params.validate_, world["state"])


def rejected(summary) -> dict[str, str]:
    return {f["pair_id"]: " ".join(f["reasons"]) + " " + f["detail"] for f in summary["rejected"]}


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_secret_nowhere(world):
    for folder in (world["data"], world["state"]):
        for name, content in files_under(folder).items() if folder.exists() else []:
            assert SECRET not in content, f"{folder / name} holds a copy of a file from outside the inbox"


def test_manifest_id_with_dotdot_writes_nothing_outside_data(world, params):
    victim = world["root"] / "somewhere" / "victim_src.png"
    victim.parent.mkdir()
    victim.write_bytes(b"the user's own file")
    write_pair(world["inbox"], "ok", seed=3)
    (world["inbox"] / "train.jsonl").write_text(json.dumps(
        {"src": "ok_src.png", "tar": "ok_tar.png", "id": "../somewhere/victim"}) + "\n")
    summary = run(world, params)
    assert victim.read_bytes() == b"the user's own file"
    assert summary["added"] == ["good"]
    assert "not a plain name" in rejected(summary)["../somewhere/victim"]
    assert sorted(files_under(world["data"])) == ["good_src.png", "good_tar.png"]
    quarantine = Path(summary["report"]).parent / "quarantine"
    assert not quarantine.exists() or all(".." not in p.parts for p in quarantine.rglob("*"))


@pytest.mark.parametrize("pair_id", ["..", "-rf", ".hidden", "a/b", "a\\b", "x" * 129, "ümlaut", "a b"])
def test_unsafe_ids_from_a_manifest_are_refused_unread(world, params, pair_id):
    write_pair(world["inbox"], "ok", seed=3)
    (world["inbox"] / "train.jsonl").write_text(json.dumps({"src": "ok_src.png", "tar": "ok_tar.png",
                                                            "id": pair_id}) + "\n")
    summary = run(world, params)
    assert summary["added"] == ["good"]
    assert list(rejected(summary)) == [pair_id] and "not a plain name" in rejected(summary)[pair_id]
    assert sorted(files_under(world["data"])) == ["good_src.png", "good_tar.png"]


def test_symlink_to_a_system_file_is_refused_and_never_copied(world, params):
    write_pair(world["inbox"], "x", seed=4)
    (world["inbox"] / "x_src.png").unlink()
    (world["inbox"] / "x_src.png").symlink_to(world["elsewhere"] / "secret.txt")
    summary = run(world, params)
    assert "symlink leading outside" in rejected(summary)["x"]
    assert_secret_nowhere(world)
    report = Path(summary["report"])
    assert not (report.parent / "quarantine" / "x").exists()
    assert "refused unread" in report.with_suffix(".html").read_text()


def test_symlinks_to_photos_elsewhere_are_not_ingested(world, params):
    for role in ("src", "tar"):
        (world["inbox"] / f"far_{role}.png").symlink_to(world["elsewhere"] / f"photo_{role}.png")
    summary = run(world, params)
    assert summary["added"] == ["good"] and "symlink leading outside" in rejected(summary)["far"]
    assert not any(name.startswith("far") for name in files_under(world["data"]))


@pytest.mark.parametrize("where", ["../elsewhere/photo_{}.png", "{abs}/photo_{}.png"])
def test_manifest_paths_leaving_the_inbox_are_refused(world, params, where):
    src, tar = (where.format(r, abs=world["elsewhere"]) for r in ("src", "tar"))
    (world["inbox"] / "train.jsonl").write_text(json.dumps({"src": src, "tar": tar, "id": "escape"}) + "\n")
    summary = run(world, params)
    assert summary["added"] == ["good"]
    assert "leads outside the delivery folder" in rejected(summary)["escape"]
    assert not any(name.startswith("escape") for name in files_under(world["data"]))


def test_symlinks_within_the_inbox_are_allowed(world, params):
    sub = world["inbox"] / "originals"
    write_pair(sub, "inside", seed=5)
    for role in ("src", "tar"):
        (world["inbox"] / f"inside_{role}.png").symlink_to(Path("originals") / f"inside_{role}.png")
    summary = run(world, params)
    assert summary["added"] == ["good", "inside"]
    stored = world["data"] / "inside_src.png"
    assert not stored.is_symlink() and stored.read_bytes() == (sub / "inside_src.png").read_bytes()


def test_a_hard_link_is_a_regular_file_and_is_copied_not_linked(world, params):
    for role in ("src", "tar"):
        os.link(world["elsewhere"] / f"photo_{role}.png", world["inbox"] / f"linked_{role}.png")
    summary = run(world, params)
    assert summary["added"] == ["good", "linked"]
    stored, delivered = world["data"] / "linked_src.png", world["inbox"] / "linked_src.png"
    assert stored.read_bytes() == delivered.read_bytes()
    assert stored.stat().st_ino != delivered.stat().st_ino  # the dataset owns its bytes


def test_a_symlinked_inbox_folder_is_read_as_the_folder_it_names(world, params):
    link = world["root"] / "inbox-link"
    link.symlink_to(world["inbox"], target_is_directory=True)
    summary = run(world, params, inbox=link)
    assert summary["added"] == ["good"] and summary["rejected"] == []


def test_a_fifo_named_like_a_photo_is_refused_without_blocking(world, params):
    write_pair(world["inbox"], "pipe", seed=6)
    (world["inbox"] / "pipe_src.png").unlink()
    os.mkfifo(world["inbox"] / "pipe_src.png")  # reading it would block forever
    summary = run(world, params)
    assert "not a regular file" in rejected(summary)["pipe"]
    assert summary["added"] == ["good"]


def test_a_symlinked_input_folder_leading_outside_is_refused(world, params):
    inbox = world["root"] / "layout"
    (inbox / "target").mkdir(parents=True)
    (inbox / "input").symlink_to(world["elsewhere"], target_is_directory=True)
    (inbox / "target" / "photo_src.png").write_bytes((world["elsewhere"] / "photo_tar.png").read_bytes())
    summary = run(world, params, inbox=inbox)
    assert "symlink leading outside" in rejected(summary)["photo_src"]
    assert not world["data"].exists() or not files_under(world["data"])


def test_a_manifest_that_is_a_symlink_outside_refuses_the_delivery_unread(world, params):
    (world["inbox"] / "train.jsonl").symlink_to(world["elsewhere"] / "secret.txt")
    with pytest.raises(IngestError, match="symlink leading outside"):
        run(world, params)
    assert_secret_nowhere(world)
