"""``brighthouse data add`` in a fresh project copy: a new DVC data version that repro sees."""
import json
import subprocess

import pytest
import yaml

from tests.components.data.test_ingest import digest
from tests.conftest import tool_env
from tests.deliveries import BAD, CONVERTED, GOOD, build_delivery

pytestmark = pytest.mark.slow


def test_delivery_makes_a_new_data_version_with_only_the_good_pairs(project_copy, tmp_path):
    inbox = tmp_path / "inbox"
    build_delivery(inbox, project_copy / "data" / "coffee_0_tar.jpg")
    inbox_before = digest(inbox)
    old = yaml.safe_load((project_copy / "data.dvc").read_text())["outs"][0]
    r = subprocess.run(["brighthouse", "data", "add", str(inbox)], cwd=project_copy, env=tool_env(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    good = sorted(GOOD + list(CONVERTED))
    assert f"added {len(good)}," in r.stdout and "new data version" in r.stdout
    for pair_id, reason in BAD.items():
        assert f"{pair_id}: {reason}" in r.stderr
    assert "redelivered" in r.stderr and "looks like coffee_0" in r.stderr
    out = yaml.safe_load((project_copy / "data.dvc").read_text())["outs"][0]
    assert out["md5"] != old["md5"] and out["nfiles"] == old["nfiles"] + 2 * len(good)
    assert digest(inbox) == inbox_before
    # stored once: every photo in data/ is the DVC cache's file (a read-only hardlink), not a copy
    cache = {(f.stat().st_dev, f.stat().st_ino) for f in (project_copy / ".dvc" / "cache").rglob("*") if f.is_file()}
    photos = [f for f in (project_copy / "data").iterdir() if f.is_file()]
    assert photos and all((f.stat().st_dev, f.stat().st_ino) in cache for f in photos)
    assert not any(f.stat().st_mode & 0o222 for f in photos)

    # dvc repro picks the new version up: the LMDBs hold exactly the old and the good new pairs
    repro = subprocess.run(["dvc", "repro", "lmdb"], cwd=project_copy, env=tool_env(), capture_output=True, text=True)
    assert repro.returncode == 0, repro.stderr[-3000:]
    splits = json.loads((project_copy / "artifacts/lmdb/splits.json").read_text())
    stored = sorted(set(splits["train"]) | set(splits["val"]))  # a cross-validated set lists every pair in both
    assert set(good) <= set(stored) and len(stored) == old["nfiles"] // 2 + len(good)
    notes = json.loads((project_copy / "artifacts/validate/report.json").read_text())["notes"]
    assert "alpha channel flattened onto white" in notes["alpha"][0]

    # pushed to the default remote: a fresh checkout of this version can pull it
    (project_copy / "data" / "new0_src.png").unlink()
    subprocess.run(["dvc", "checkout", "-q", "data.dvc"], cwd=project_copy, env=tool_env(), check=True)
    assert (project_copy / "data" / "new0_src.png").exists()
