"""Service supervision without the stack: a failed start names the service and its log, and
stopping a service stops its whole process group, children included, and the children that
left it for a session of their own (an Airflow task, a torchrun rank)."""
import sys
import time

import pytest

from stack.services import Service, ServiceFailed, running_pid, start, stop


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for its parent (init) to reap it."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_service_that_dies_while_starting_is_named_with_its_log(tmp_path):
    dying = Service("flaky", [sys.executable, "-c", "print('cannot bind 127.0.0.1:1'); raise SystemExit(3)"],
                    healthy=lambda: False, ready_within_s=10)
    with pytest.raises(ServiceFailed, match=r"(?s)flaky exited with status 3.*cannot bind 127.0.0.1:1"):
        start(dying, tmp_path)


def test_a_service_that_never_gets_healthy_is_named_with_its_log(tmp_path):
    stuck = Service("stuck", [sys.executable, "-c", "print('waiting for the database', flush=True); "
                              "import time; time.sleep(60)"], healthy=lambda: False, ready_within_s=1.5)
    with pytest.raises(ServiceFailed, match=r"(?s)stuck was not healthy within 2 s.*waiting for the database"):
        start(stuck, tmp_path)
    stop(tmp_path, "stuck")


def test_stop_takes_down_the_whole_process_tree_and_start_is_idempotent(tmp_path):
    child_pid_file = tmp_path / "child.pid"
    sleeper = "[sys.executable, '-c', 'import time; time.sleep(120)']"
    script = ("import subprocess, sys, time; "
              f"c = subprocess.Popen({sleeper}); d = subprocess.Popen({sleeper}, start_new_session=True); "
              f"open({str(child_pid_file)!r}, 'w').write(f'{{c.pid}} {{d.pid}}'); time.sleep(120)")
    service = Service("parent", [sys.executable, "-c", script], ready_within_s=20,
                      healthy=lambda: child_pid_file.exists() and len(child_pid_file.read_text().split()) == 2)
    start(service, tmp_path)
    leader = running_pid(tmp_path, "parent")
    start(service, tmp_path)  # healthy already: left alone
    assert running_pid(tmp_path, "parent") == leader
    child, own_session = map(int, child_pid_file.read_text().split())
    assert stop(tmp_path, "parent", within_s=10)
    time.sleep(0.2)
    assert gone(leader) and gone(child) and gone(own_session)
    assert running_pid(tmp_path, "parent") is None and not stop(tmp_path, "parent")
