"""One ingest at a time, and what a killed run left behind is cleaned by the next."""
import select
import subprocess
import time

from components.data.data_version import ingest_lock, version_owed
from components.data.ingest import ingest
from tests.conftest import REPO, tool_env, write_pair


def test_a_second_data_add_says_whom_it_waits_for_and_runs_after_the_first(tmp_path):
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    write_pair(inbox, "waiting", seed=7)
    with ingest_lock(state):
        proc = subprocess.Popen(["brighthouse", "data", "add", str(inbox), "--data", str(tmp_path / "data"),
                                 "--no-version", "--params", str(REPO / "params.yaml")],
                                cwd=tmp_path, env=tool_env(BRIGHTHOUSE_HOME=str(state)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        assert ready, "the second run said nothing while it waited"
        line = proc.stderr.readline()
        assert "another `data add`" in line and "waiting" in line, line
        time.sleep(1.0)
        assert proc.poll() is None and not (tmp_path / "data").exists()  # it really waits
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "added 1," in out and (tmp_path / "data" / "waiting_src.png").is_file()


def test_staging_left_by_a_killed_run_is_removed_by_the_next(tmp_path, params):
    state = tmp_path / "state"
    stale = state / "ingest-staging-0123abcd"
    stale.mkdir(parents=True)
    (stale / "half_src.png").write_bytes(b"half a photo")
    write_pair(tmp_path / "inbox", "next", seed=8)
    said = []
    summary = ingest(tmp_path / "inbox", tmp_path / "data", params.validate_, state, say=said.append)
    assert summary["added"] == ["next"]
    assert not stale.exists() and any("interrupted earlier run" in s for s in said)


def test_changing_data_owes_a_version_and_an_unchanged_delivery_does_not(tmp_path, params):
    state = tmp_path / "state"
    write_pair(tmp_path / "inbox", "owed", seed=9)
    ingest(tmp_path / "inbox", tmp_path / "data", params.validate_, state)
    assert version_owed(state)  # paid only by version_data (dvc add + push): see tests/pipeline
    (state / "data-version-owed.json").unlink()
    summary = ingest(tmp_path / "inbox", tmp_path / "data", params.validate_, state)
    assert summary["unchanged"] == ["owed"] and not version_owed(state)
