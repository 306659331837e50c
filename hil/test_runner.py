"""Tests of the HIL runner itself (hil/ci runs them with pytest).

* the verdict functions catch loss, excess duplicates, double-stored events, seq gaps and
  altered or uncaptured receipts, and pass a clean run;
* the real-rig path (SSH target, systemd, relay, uhubctl, switch port) prints the commands
  it would run in dry-run mode;
* acceptance: a scenario run against a stand-in agent that acks lines before storing them
  and drops some FAILS the runner (needs root, mosquitto and POSEDGE_BIN; skipped
  otherwise, except under CI=true where missing prerequisites are an error).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HIL = Path(__file__).resolve().parent
sys.path.insert(0, str(HIL))

from posedge_hil import check  # noqa: E402
from posedge_hil.check import Delivery, compare, compare_printer, percentiles  # noqa: E402
from posedge_hil.printer import RecordingPrinter  # noqa: E402
from posedge_hil.procs import Sampler  # noqa: E402


def ledger(n, acked=True, reg="reg-1"):
    return [{"idempotency_key": f"s|{reg}|d|{i}|transaction", "acked": acked, "sent_ms": 1000.0 + i}
            for i in range(1, n + 1)]


def deliver(entries, source="lane1", arrival=1010.0):
    return [Delivery(key=e["idempotency_key"], event_id=f"id-{e['idempotency_key']}", arrival_ms=arrival + i,
                     source=source, seq=i + 1) for i, e in enumerate(entries)]


def test_clean_run_passes():
    led = ledger(100)
    v = compare(led, deliver(led), duplicate_bound=0)
    assert v.ok, v.failures
    assert (v.acked, v.lost, v.duplicates, v.seq_gaps) == (100, 0, 0, 0)
    assert v.latency_ms["p50"] is not None


def test_a_lost_acked_event_fails():
    led = ledger(100)
    v = compare(led, deliver(led)[:-1], duplicate_bound=10)
    assert not v.ok
    assert v.lost == 1 and v.lost_keys == ["s|reg-1|d|100|transaction"]
    assert any("never reached the cloud" in f for f in v.failures)


def test_an_unacked_event_may_be_missing_or_delivered():
    led = ledger(10) + [{"idempotency_key": "s|reg-1|d|11|transaction", "acked": False}]
    v = compare(led, deliver(led[:10]), duplicate_bound=0)
    assert v.ok, v.failures
    assert v.nacked == 1


def test_duplicates_beyond_the_bound_fail_and_within_pass():
    led = ledger(50)
    d = deliver(led)
    assert compare(led, d + d[:5], duplicate_bound=5).ok
    v = compare(led, d + d[:6], duplicate_bound=5)
    assert not v.ok and v.duplicates == 6


def test_a_key_stored_twice_fails():
    led = ledger(5)
    d = deliver(led)
    twin = Delivery(key=d[0].key, event_id="another-id", arrival_ms=2000.0, source="lane1", seq=6)
    v = compare(led, d + [twin], duplicate_bound=10)
    assert v.conflicting_ids == 1 and not v.ok


def test_seq_gap_fails():
    led = ledger(5)
    d = deliver(led)
    d[2].seq = 9
    v = compare(led, d, duplicate_bound=0)
    assert v.seq_gaps > 0 and not v.ok


def test_nothing_acked_is_a_failure_not_a_pass():
    v = compare([], [], duplicate_bound=0)
    assert not v.ok


def test_percentiles():
    p = percentiles(list(range(1, 101)))
    assert (p["p50"], p["p95"], p["p99"], p["max"]) == (50, 95, 99, 100)
    assert percentiles([])["p99"] is None


def _receipt(text: bytes) -> bytes:
    return b"\x1b@" + text + b"\n" + check.CUT


def test_printer_verdict():
    rs = [_receipt(f"receipt {i} total 9.99".encode()) for i in range(4)]
    led = [{"receipt_sha256": hashlib.sha256(r).hexdigest()} for r in rs]
    stream = b"".join(rs[:3]) + rs[3][:10]  # the printer went dark inside the 4th
    sha = [e["receipt_sha256"] for e in led]
    v = compare_printer([(led, stream)], sha, extra_bound=1)
    assert v.failures == [] and (v.printed, v.torn, v.compared) == (3, 1, 3)
    assert v.captured_not_printed == 1
    # A printed receipt the agent did not capture.
    v = compare_printer([(led, stream)], sha[1:], extra_bound=1)
    assert v.not_captured == 1 and v.failures
    # A receipt altered on its way to the printer.
    bad = stream.replace(b"receipt 1", b"receipt X")
    v = compare_printer([(led, bad)], sha, extra_bound=1)
    assert v.relay_mismatch == 1 and v.failures
    # Receipts at the cloud that the register never sent.
    v = compare_printer([(led, stream)], sha + ["f" * 64, "e" * 64], extra_bound=1)
    assert v.unknown == 2 and v.failures


def test_card_data_detection():
    assert check.may_hold_card_data(b"paid by 4111 1111 1111 1111 thanks")
    assert check.may_hold_card_data(b"x 3782-822463-10005")
    assert not check.may_hold_card_data(b"GTIN 4006383395630 total 12.99")


def test_recording_printer_pulls_its_plug_mid_receipt():
    p = RecordingPrinter("127.0.0.1", 0)
    try:
        p.pull_plug_mid_receipt(cut_after=2, tear_bytes=5, down_s=0.5)
        rs = [_receipt(f"r{i}".encode() * 20) for i in range(4)]
        s = socket.create_connection(("127.0.0.1", p.port))
        try:
            for r in rs:
                s.sendall(r)
                time.sleep(0.05)
        except OSError:
            pass
        s.close()
        assert p.wait_up(5)
        streams = p.streams()
        assert streams[0] == rs[0] + rs[1] + rs[2][:5]
        assert p.disconnects == 1
    finally:
        p.close()


def test_sampler_sums_cpu_over_restarts():
    pids = iter([10, 10, 11, 11])
    samples = {10: (1000, 2.0), 11: (3000, 0.5)}
    s = Sampler(lambda: next(pids, 11), period=3600, sample_fn=lambda pid: samples[pid])
    s.stop()
    for _ in range(3):
        s.sample_once()
    assert s.peak_rss_kib == 3000 and s.cpu_s == pytest.approx(2.5)


# --- the real-rig path, as a dry run --------------------------------------------------------


def run_hil(*args, env=None, timeout=900):
    e = dict(os.environ, PYTHONPATH=str(HIL))
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "posedge_hil", *args], capture_output=True, text=True,
                          env=e, timeout=timeout, cwd=HIL.parent)


def test_example_rig_dry_run_prints_every_command(tmp_path):
    r = run_hil("--rig", "hil/rigs/example-store-box.yaml", "--scenario", "all", "--dry-run",
                "--report", str(tmp_path))
    out = r.stdout
    assert r.returncode == 0, r.stdout + r.stderr
    expected = [
        # deploy: the aarch64 build and the unit over SSH
        "scp -o BatchMode=yes", "target/cross/aarch64-unknown-linux-gnu/release/posedge",
        "root@192.168.77.10:/usr/bin/posedge.new", "systemd/posedge.service",
        "/etc/systemd/system/posedge.service", "systemctl daemon-reload",
        "posedge check-config /etc/posedge/posedge.toml", "systemctl start posedge",
        # the journal
        "journalctl -u posedge -o json",
        # power cut through the relay
        "[power off]", "usbrelay", "[power on]",
        # serial unplug through the hub's port power
        "uhubctl -l 1-1 -p 2 -a off", "uhubctl -l 1-1 -p 2 -a on",
        # uplink cut at the managed switch
        "[uplink off]", "[uplink on]",
        # broker restart
        "systemctl stop mosquitto", "systemctl start mosquitto",
        # the simulated registers on the HIL PC
        "sim --serial /dev/serial/by-id/", "sim --tcp 192.168.77.10:7801",
        "--clock-skew-s -10800",
    ]
    for s in expected:
        assert s in out, f"dry run does not print {s!r}"
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert len(junit.findall(".//testcase")) == 8
    assert len(junit.findall(".//skipped")) == 8


# --- acceptance: a lossy agent must fail the check --------------------------------------------


def _prereqs():
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if not shutil.which("mosquitto"):
        missing.append("mosquitto")
    if not shutil.which("ip"):
        missing.append("iproute2")
    if not os.environ.get("POSEDGE_BIN") or not Path(os.environ["POSEDGE_BIN"]).exists():
        missing.append("POSEDGE_BIN")
    return missing


@pytest.fixture
def sim_prereqs():
    missing = _prereqs()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"missing for the sim rig: {', '.join(missing)}")
        pytest.skip(f"missing for the sim rig: {', '.join(missing)}")


def test_a_stand_in_agent_that_acks_before_storing_fails_the_run(tmp_path, sim_prereqs):
    before = _namespaces()
    r = run_hil("--rig", "hil/rigs/sim-lossy.yaml", "--scenario", "clock_skew", "--report", str(tmp_path))
    assert _namespaces() <= before, "the failed run left its namespace behind"
    assert _procs_mentioning(tmp_path) == []
    assert r.returncode == 1, r.stdout + r.stderr
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    failures = junit.findall(".//failure")
    assert len(failures) == 1
    assert "never reached the cloud" in failures[0].get("message")
    report = (tmp_path / "report.md").read_text()
    assert "**FAIL**" in report
    # It was not a broken rig: the stand-in acked everything, and only what it dropped is lost.
    verdict = json.loads(junit.find(".//system-out").text)["verdict"]
    assert verdict["acked"] == 900
    assert 0 < verdict["lost"] < verdict["acked"]


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("phil")}


def _procs_mentioning(path: Path) -> list[str]:
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(path) in cmd:
                found.append(f"{p.name}: {cmd}")
    return found


def test_a_runner_stopped_mid_scenario_leaves_no_namespace_or_process(tmp_path, sim_prereqs):
    before = _namespaces()
    e = dict(os.environ, PYTHONPATH=str(HIL))
    p = subprocess.Popen([sys.executable, "-m", "posedge_hil", "--rig", "hil/rigs/sim.yaml", "--scenario",
                          "uplink_cut", "--report", str(tmp_path)], cwd=HIL.parent, env=e,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = set()
    end = time.time() + 60
    while time.time() < end and not seen:
        time.sleep(0.2)
        seen = _namespaces() - before
    assert seen, "the sim rig made no namespace"
    # Wait until the agent and the registers run, then stop the runner as CI would.
    end = time.time() + 60
    while time.time() < end and not (tmp_path / "scenarios" / "uplink_cut" / "ledger-reg-1.ndjson").exists():
        time.sleep(0.2)
    time.sleep(1)
    p.terminate()
    out, _ = p.communicate(timeout=60)
    assert p.returncode != 0
    time.sleep(0.5)
    assert not (_namespaces() & seen), out
    assert _procs_mentioning(tmp_path) == [], out


def test_an_agent_that_acks_before_durable_passes_without_faults_and_fails_a_power_cut(tmp_path, sim_prereqs):
    calm = run_hil("--rig", "hil/rigs/sim-ack-before-durable.yaml", "--scenario", "clock_skew",
                   "--report", str(tmp_path / "calm"))
    assert calm.returncode == 0, calm.stdout + calm.stderr
    cut = run_hil("--rig", "hil/rigs/sim-ack-before-durable.yaml", "--scenario", "short.power_cut_burst",
                  "--report", str(tmp_path / "cut"))
    assert cut.returncode == 1, cut.stdout + cut.stderr
    junit = ET.parse(tmp_path / "cut" / "junit.xml").getroot()
    failure = junit.find(".//failure")
    assert failure is not None and "never reached the cloud" in failure.get("message")
    verdict = json.loads(junit.find(".//system-out").text)["verdict"]
    assert verdict["acked"] == verdict["sent"] == 4 * 1200 and verdict["lost"] > 0
