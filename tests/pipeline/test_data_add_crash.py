"""``brighthouse data add`` killed with SIGKILL in each phase; a plain re-run finishes the job.

The kill is real: the CLI runs in its own process group inside a small launcher that kills
the group (or only the CLI process) at the named point, so a ``dvc`` child dies with it or
runs on alone, as it would under an OOM kill or a closed terminal. After the re-run the data
version holds every good pair, ``dvc status`` is clean, the remote has it, and no staging
folder is left.
"""
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import tool_env, write_pair
from tests.pipeline.conftest import dvc

pytestmark = pytest.mark.slow

# Runs the CLI with one function wrapped so that it kills at the phase given in argv[1].
LAUNCHER = r'''
import os, pathlib, shutil, signal, subprocess, sys, time
phase, argv = sys.argv[1], sys.argv[2:]
calls = {"n": 0}

def die():
    os.killpg(0, signal.SIGKILL)

def nth(fn, n, when=lambda *a, **k: True):
    def wrapped(*a, **k):
        if when(*a, **k):
            calls["n"] += 1
            if calls["n"] == n:
                die()
        return fn(*a, **k)
    return wrapped

real_run = subprocess.run
def dvc_run(cmd, *a, **k):
    verb = cmd[3] if len(cmd) > 3 else ""
    if phase == "dvc-add" and verb == "add":  # kill while dvc holds its lock on data/
        child = subprocess.Popen(cmd, cwd=k.get("cwd"))
        rwlock = pathlib.Path(k.get("cwd") or ".") / ".dvc" / "tmp" / "rwlock"
        while child.poll() is None and "/data" not in (rwlock.read_text() if rwlock.exists() else ""):
            time.sleep(0.005)
        if child.poll() is not None:
            pathlib.Path(os.environ["MISSED_FILE"]).touch()
        die()
    if phase == "cli-only-in-dvc-add" and verb == "add":
        child = subprocess.Popen(cmd, cwd=k.get("cwd"), start_new_session=True)
        pathlib.Path(os.environ["CHILD_PID_FILE"]).write_text(str(child.pid))
        os.kill(os.getpid(), signal.SIGKILL)
    if phase == "dvc-push" and verb == "push":
        die()
    return real_run(cmd, *a, **k)

import components.data.pair_suite
if phase == "validate":
    components.data.pair_suite.run_suite = lambda *a, **k: die()
if phase == "staging":
    shutil.copy2 = nth(shutil.copy2, 2)
if phase == "moving":
    pathlib.Path.replace = nth(pathlib.Path.replace, 2, lambda self, dest: pathlib.Path(dest).parent.name == "data")
subprocess.run = dvc_run
from brighthouse.cli import app
app(argv, prog_name="brighthouse")
'''
PHASES = ["validate", "staging", "moving", "dvc-add", "cli-only-in-dvc-add", "dvc-push"]


def killed_run(project, phase, inbox, tmp_path):
    env = tool_env(CHILD_PID_FILE=str(tmp_path / "child.pid"), MISSED_FILE=str(tmp_path / "missed"))
    r = subprocess.run([sys.executable, "-c", LAUNCHER, phase, "data", "add", str(inbox)], cwd=project, env=env,
                       capture_output=True, text=True, start_new_session=True, timeout=300)
    assert r.returncode == -9, f"the launcher was not killed at {phase}: {r.returncode} {r.stderr[-2000:]}"
    assert not (tmp_path / "missed").exists(), "dvc add finished before it could be killed"
    pid_file = tmp_path / "child.pid"
    if pid_file.exists():  # the orphaned dvc add runs on: wait for it, as the next user would
        pid = int(pid_file.read_text())
        while os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read().lower():
            time.sleep(0.2)


@pytest.mark.parametrize("phase", PHASES)
def test_a_rerun_after_a_kill_completes_the_version_and_the_push(project_copy, tmp_path, phase):
    inbox = tmp_path / "inbox"
    for i in range(3):
        write_pair(inbox, f"fresh{i}", size=(160, 120), seed=50 + i)
    old_md5 = yaml.safe_load((project_copy / "data.dvc").read_text())["outs"][0]["md5"]
    killed_run(project_copy, phase, inbox, tmp_path)

    r = subprocess.run(["brighthouse", "data", "add", str(inbox)], cwd=project_copy, env=tool_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "new data version" in r.stdout, (r.stdout, r.stderr)
    out = yaml.safe_load((project_copy / "data.dvc").read_text())["outs"][0]
    assert out["md5"] != old_md5
    assert {f"fresh{i}_{role}.png" for i in range(3) for role in ("src", "tar")} <= {
        p.name for p in (project_copy / "data").iterdir()}
    status = dvc(project_copy, "status", "--json", "data.dvc")
    assert json.loads(status.stdout or "{}") == {}, status.stdout  # data.dvc matches data/
    cloud = dvc(project_copy, "status", "--cloud", "--json", "data.dvc")
    assert json.loads(cloud.stdout or "{}") == {}, cloud.stdout  # and the remote has every file
    state = project_copy / ".brighthouse"
    assert not list(state.glob("ingest-staging-*")) and not (state / "data-version-owed.json").exists()
