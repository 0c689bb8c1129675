"""Property: for any delivery layout (odd names, manifests with any ids and paths, symlinks in
and out, FIFOs, sub-folders), ingest writes only ``<safe id>_src|_tar.<ext>`` files into
``data/``, whose bytes are regular files from inside the inbox, and reads nothing outside it.
"""
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from components.data.confine import SAFE_ID
from components.data.ingest import IngestError, ingest
from tests.conftest import write_pair

pytestmark = pytest.mark.slow
SECRET = b"outside the inbox: must never be copied"
PARTS = st.sampled_from(list("abcXY09_-. ") + ["..", "/", "\\", "\u00fc", "\n", "%", "*", "_src", "_tar"])


def names(max_parts: int) -> st.SearchStrategy[str]:
    return st.lists(PARTS, max_size=max_parts).map("".join)


IDS = st.one_of(names(8), st.sampled_from(["../up", "/abs", "..", "ok1"]))
EXTS = st.sampled_from([".png", ".jpg", ".PNG", ".txt", ""])
PATHS = st.one_of(
    st.sampled_from(["../outside/secret_src.png", "{outside}/secret_src.png", "pair0_src.png", "pair1_tar.png",
                     "sub/pair2_src.png", "link_out_src.png", "", ".", "sub"]),
    names(10))
ENTRY = st.fixed_dictionaries({"src": PATHS, "tar": PATHS}, optional={"id": IDS})
NODE = st.sampled_from(["pair", "link_out", "link_in", "fifo", "dir_named_like_photo", "junk_file"])


def build(root: Path, nodes: list[tuple[str, str, str]], manifest: list[dict] | None) -> Path:
    inbox, outside = root / "inbox", root / "outside"
    write_pair(outside, "secret", seed=99)
    (outside / "secret.txt").write_bytes(SECRET)
    write_pair(inbox, "pair0", seed=1)
    write_pair(inbox / "sub", "pair2", seed=2)
    for i, (kind, stem, ext) in enumerate(nodes):
        name = f"{stem.replace('/', '_')}{i}{('_src', '_tar')[i % 2]}{ext}"
        path = inbox / name
        if path.exists() or path.is_symlink():
            continue
        if kind == "pair":
            write_pair(inbox, f"{stem.replace('/', '_')}{i}", seed=10 + i)
        elif kind == "link_out":
            path.symlink_to(outside / ("secret.txt" if i % 2 else "secret_src.png"))
        elif kind == "link_in":
            path.symlink_to(Path("sub") / "pair2_src.png")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir_named_like_photo":
            path.mkdir()
        else:
            path.write_bytes(b"junk" * i)
    if manifest is not None:
        lines = [json.dumps({k: v.replace("{outside}", str(outside)) for k, v in e.items()}) for e in manifest]
        (inbox / "train.jsonl").write_text("\n".join(lines) + "\n")
    return inbox


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


@settings(max_examples=60, deadline=None,  # params is read-only: sharing it across examples is safe
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(nodes=st.lists(st.tuples(NODE, names(5), EXTS), max_size=6),
       manifest=st.one_of(st.none(), st.lists(ENTRY, max_size=4)))
def test_any_delivery_layout_stays_inside_its_folders(params, nodes, manifest):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inbox = build(root, nodes, manifest)
        outside_before = snapshot(root / "outside")
        inbox_files = {p.read_bytes() for p in inbox.rglob("*")
                       if p.is_file() and not p.is_symlink() and p.stat().st_nlink == 1}
        try:
            summary = ingest(inbox, root / "data", params.validate_, root / "state")
            event(f"ingested, {len(summary['added'])} added, {len(summary['rejected'])} rejected")
        except IngestError:
            event("delivery refused")  # a refused delivery (bad manifest, id clash) is fine: it must still write nothing out
        assert sorted(p.name for p in root.iterdir()) in (["inbox", "outside", "state"],
                                                          ["data", "inbox", "outside", "state"])
        assert snapshot(root / "outside") == outside_before
        for path in (root / "data").rglob("*") if (root / "data").exists() else []:
            pair_id, _, role_ext = path.name.rpartition("_")
            assert path.parent == root / "data" and SAFE_ID.fullmatch(pair_id) and ".." not in pair_id
            assert role_ext.split(".")[0] in ("src", "tar") and not path.is_symlink()
            assert path.read_bytes() in inbox_files
        for path in (root / "state").rglob("*"):
            assert not path.is_symlink()
            if path.is_file():
                assert SECRET not in path.read_bytes()
                assert path.read_bytes() not in outside_before.values()
