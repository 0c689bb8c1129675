"""``brighthouse data add`` in a fresh project copy: a new DVC data version that repro sees."""
import subprocess

import yaml

from tests.components.test_ingest import bad_delivery, digest
from tests.conftest import tool_env


def test_delivery_makes_a_new_data_version_with_only_the_good_pairs(project_copy, tmp_path):
    inbox = tmp_path / "inbox"
    bad_delivery(inbox)
    inbox_before = digest(inbox)
    old_md5 = yaml.safe_load((project_copy / "data.dvc").read_text())["outs"][0]["md5"]
    r = subprocess.run(["brighthouse", "data", "add", str(inbox)], cwd=project_copy, env=tool_env(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "added 3" in r.stdout and "new data version" in r.stdout
    for pair_id, reason in (("nopartner", "partner file missing"), ("cut", "target does not decode"),
                            ("mismatch", "input and target differ in size"), ("empty", "input does not decode")):
        assert f"{pair_id}: {reason}" in r.stderr
    out = yaml.safe_load((project_copy / "data.dvc").read_text())["outs"][0]
    assert out["md5"] != old_md5 and out["nfiles"] == 28 + 6
    assert digest(inbox) == inbox_before
    status = subprocess.run(["dvc", "status", "validate"], cwd=project_copy, env=tool_env(),
                            capture_output=True, text=True)
    assert "changed deps" in status.stdout and "data" in status.stdout
    # pushed to the default remote: a fresh checkout of this version can pull it
    (project_copy / "data" / "new0_src.png").unlink()
    subprocess.run(["dvc", "checkout", "-q", "data.dvc"], cwd=project_copy, env=tool_env(), check=True)
    assert (project_copy / "data" / "new0_src.png").exists()
