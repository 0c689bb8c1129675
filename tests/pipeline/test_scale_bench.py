"""The scale bench's smallest setting: real-resolution pairs (about 3300x2200) through every
DVC stage in a project copy, each stage measured (bench/scale.py, figures in bench/README.md).

What it guards at a size CI can afford: every stage runs on full-size photos, stays within the
memory target of issue 14, and the LMDB (the output that once cost 25x its photos) stays a
small multiple of them. It runs the default profile (cpu: global_view), as `make demo` does; the
tiled profile's full-resolution gate took 101 s of this test's 280 for its one val pair
(bench/README.md, "The test suite's wall time"), and is measured by the bench at 50 pairs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_or_skip, tool_env

REPO = Path(__file__).resolve().parents[2]
GB = 2**30


@pytest.mark.slow
def test_full_resolution_pairs_go_through_every_stage_in_bounded_memory_and_disk(tmp_path):
    shared_or_skip("real-inputs")
    out = tmp_path / "scale.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--pairs", "5", "--iterations", "2", "--profile", "cpu",
                           "--keep", str(tmp_path / "work"), "--json", str(out)],
                          env=tool_env(), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    stages = {r["stage"]: r for r in result["rows"][1:]}
    assert list(stages) == ["data add", "data push", "validate", "lmdb", "train", "export", "evaluate", "register"]
    assert all(r["rc"] == 0 for r in stages.values()), stages
    assert all(r["peak_rss_mb"] * 2**20 < 4 * GB for r in stages.values()), stages
    # full-size photos go in as their own JPEG bytes, plus train photos at 768 px as PNG: 1.36x
    # the JPEGs at 577 pairs, against 40x once (overlapping PNG sub-images, cached twice by DVC)
    jpeg, disk = result["jpeg_bytes"], result["disk"]
    assert stages["lmdb"]["written_mb"] * 2**20 < 1.6 * jpeg, stages["lmdb"]
    # DVC's cache is data/ itself (hardlinks): versioning the photos writes nothing more, so the
    # project holds them once (its cache holds the models), and the remote once more
    assert stages["data add"]["written_mb"] * 2**20 < 0.01 * jpeg, stages["data add"]
    assert sum(size for place, size in disk.items() if place.startswith(("data", "lmdb", "remote"))) < 3.5 * jpeg, disk
    lmdb = tmp_path / "work" / "project" / "artifacts" / "lmdb"
    assert (lmdb / "val" / "gt.lmdb" / "data.mdb").is_file()
