"""Start, check and stop one service as a plain process, the way an init system would.

Each service runs in its own session (so its own process group), its pid in ``<name>.pid`` and
its output in ``<name>.log`` under the stack's folder. It is stopped by signalling that group,
never by process name, and a service that does not come up in time is named with its log's
last lines. Ports come from the kernel (bind to port 0) unless the user gives them.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOG_TAIL_LINES = 30
START_MARK = "==== brighthouse stack: starting "  # each start's output follows its own mark


class ServiceFailed(RuntimeError):
    """A service did not start or did not become healthy; the message carries its log's tail."""


@dataclass(frozen=True)
class Service:
    name: str
    argv: Sequence[str]
    healthy: Callable[[], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_within_s: float = 60.0
    stop_signal: int = signal.SIGTERM
    stop_within_s: float = 30.0
    cwd: Path | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.is_file():
        return f"(no log at {path})"
    return "\n".join(current_log(path).splitlines()[-lines:])


def current_log(path: Path) -> str:
    """What the service wrote since its latest start."""
    text = path.read_text(errors="replace") if path.is_file() else ""
    return text.rsplit(START_MARK, 1)[-1]


def _pid_file(folder: Path, name: str) -> Path:
    return folder / f"{name}.pid"


def log_file(folder: Path, name: str) -> Path:
    return folder / f"{name}.log"


def running_pid(folder: Path, name: str) -> int | None:
    """The recorded process group's leader if it is still alive (and still leads its group,
    so a recycled pid of some unrelated process is not taken for the service)."""
    pid_file = _pid_file(folder, name)
    try:
        pid = int(pid_file.read_text())
        if os.getpgid(pid) == pid:
            return pid
    except (OSError, ValueError):
        pass
    return None


def launch(service: Service, folder: Path) -> subprocess.Popen | None:
    """Start ``service`` unless it already runs healthy (then None); does not wait for it."""
    pid = running_pid(folder, service.name)
    if pid is not None and service.healthy():
        return None
    if pid is not None:  # alive but unhealthy: a half-started service from before
        stop(folder, service.name, service.stop_signal, service.stop_within_s)
    with open(log_file(folder, service.name), "ab") as log:
        log.write(f"\n{START_MARK}{service.name} ====\n".encode())
        log.flush()
        proc = subprocess.Popen(list(service.argv), env={**os.environ, **service.env}, cwd=service.cwd,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    _pid_file(folder, service.name).write_text(str(proc.pid))
    return proc


def start(service: Service, folder: Path) -> None:
    """Start ``service`` unless it already runs healthy, and wait until it is healthy."""
    wait_healthy(service, folder, launch(service, folder))


def wait_healthy(service: Service, folder: Path, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + service.ready_within_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceFailed(f"{service.name} exited with status {proc.returncode} while starting; "
                                f"last lines of {log_file(folder, service.name)}:\n"
                                f"{log_tail(log_file(folder, service.name))}")
        if service.healthy():
            return
        time.sleep(0.25)
    raise ServiceFailed(f"{service.name} was not healthy within {service.ready_within_s:.0f} s; last lines of "
                        f"{log_file(folder, service.name)}:\n{log_tail(log_file(folder, service.name))}")


def stop(folder: Path, name: str, stop_signal: int = signal.SIGTERM, within_s: float = 30.0) -> bool:
    """Signal the service's process group, wait for its leader to exit, then KILL the group and
    every process it had started, also those in groups of their own (an Airflow task runs in
    its own group, and torchrun's ranks in their own sessions), as an init system's cgroup
    stop would. Returns whether it was running."""
    pid = running_pid(folder, name)
    if pid is None:
        _pid_file(folder, name).unlink(missing_ok=True)
        return False
    tree = _descendants(pid)  # before the leader goes: its orphans would lose their ancestry
    _signal_group(pid, stop_signal)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.2)
    _signal_group(pid, signal.SIGKILL)  # stragglers (a worker's children) and a leader past its deadline
    for child, started in tree.items():
        if _start_time(child) == started:  # still that process, not a recycled pid
            _signal_pid(child, signal.SIGKILL)
    _pid_file(folder, name).unlink(missing_ok=True)
    return True


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state, ppid, pgrp, ...), None if gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    fields = _proc_stat(pid)
    return fields[19] if fields else None  # starttime, in clock ticks since boot


def _descendants(root: int) -> dict[int, str]:
    """Every live descendant of ``root`` (pid -> start time), whatever its group or session."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        fields = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if fields:
            parents[int(entry.name)] = int(fields[1])
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for child in [c for c, p in parents.items() if p == parent and c not in found]:
            started = _start_time(child)
            if started is not None:
                found[child] = started
                frontier.append(child)
    return found


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie leader (its parent, this process, has not reaped it) counts as gone
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        fields = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def run_once(argv: Sequence[str], env: Mapping[str, str], what: str, timeout_s: float = 300.0) -> str:
    """A one-off setup command (initdb, a migration); its output is in the error if it fails."""
    try:
        done = subprocess.run(list(argv), env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ServiceFailed(f"{what} did not finish within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-LOG_TAIL_LINES:])
        raise ServiceFailed(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout
