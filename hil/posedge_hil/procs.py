"""Child processes (killed with the runner: PR_SET_PDEATHSIG, plus an atexit sweep) and
the agent's RSS and CPU from /proc."""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import threading
import time

_children: list[subprocess.Popen] = []
_cleanups: list = []
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()


def spawn(cmd, *, stdout=None, stderr=None, env=None) -> subprocess.Popen:
    """Starts `cmd` in its own session; it dies with the runner."""
    p = subprocess.Popen(
        [str(c) for c in cmd],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        preexec_fn=_die_with_parent,
    )
    _children.append(p)
    return p


def kill(p: subprocess.Popen | None, sig=signal.SIGKILL, wait=10.0) -> None:
    """Signals one process we started (by its pid) and reaps it."""
    if p is None or p.poll() is not None:
        return
    try:
        os.kill(p.pid, sig)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()


def on_exit(fn) -> None:
    """Registers a cleanup that runs at exit even after a failure (last in, first out)."""
    _cleanups.append(fn)


@atexit.register
def _sweep():
    for p in list(_children):
        kill(p, signal.SIGKILL, wait=5)
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            print(f"hil: cleanup {fn!r} failed: {e}")


def _term(signum, frame):
    raise SystemExit(128 + signum)


def install_signal_handlers():
    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGHUP, _term)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_sample(pid: int) -> tuple[int, float] | None:
    """(RSS in KiB, CPU seconds user+system) of a live pid, else None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        return rss, cpu
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None


class Sampler:
    """Samples a changing pid (the agent across restarts) every `period` seconds: peak
    RSS, CPU seconds summed over every pid seen, RSS series."""

    def __init__(self, pid_fn, period=0.5, sample_fn=proc_sample):
        self.pid_fn = pid_fn
        self.period = period
        self.sample_fn = sample_fn
        self.peak_rss_kib = 0
        self.cpu_by_pid: dict[int, float] = {}
        self.series: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.period)

    def sample_once(self):
        pid = self.pid_fn()
        if pid:
            s = self.sample_fn(pid)
            if s:
                rss, cpu = s
                self.peak_rss_kib = max(self.peak_rss_kib, rss)
                self.cpu_by_pid[pid] = cpu
                self.series.append((time.time(), rss))

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)
        self.sample_once()

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu_by_pid.values())
