"""The simulated rig: the whole store on this machine.

    host (runner, registers, cloud subscriber, Mosquitto, recording printer)
      │  10.R.1.1 ── veth "LAN" ── 10.R.1.2   ┐
      │  10.R.2.1 ── veth "uplink" ─ 10.R.2.2 ├ netns phil<pid>: posedge run
      │                                       ┘
      Mosquitto listens on 10.R.2.1 only (TLS 1.2+, client certificates required), so the
      agent reaches the broker only through the uplink veth; `ip link set <uplink> down`
      cuts it while the registers keep talking to the agent over the LAN veth.

Serial registers are `posedge sim --pty --pty-link` (the agent opens the link; a replug
gives the pty a new /dev/pts name, as USB re-enumeration does); the unplug is done by the
simulated register itself (`--unplug-every`: half a frame, then the pty is closed and a new
one opened). The printer is a TCP recorder on 10.R.1.1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from . import procs, simdrivers
from .certs import make_pki
from .printer import RecordingPrinter
from .rig import Layout, Rig, render_config, wait_port

NS_PREFIX = "phil"


def sh(*cmd, check=True):
    return subprocess.run([str(c) for c in cmd], check=check, capture_output=True, text=True)


def sweep_stale_namespaces(log=print):
    """Deletes namespaces of earlier runs whose runner died (named phil<pid>)."""
    out = sh("ip", "netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NS_PREFIX) and name[len(NS_PREFIX):].isdigit():
            pid = int(name[len(NS_PREFIX):])
            if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                log(f"hil: removing stale namespace {name}")
                sh("ip", "netns", "del", name, check=False)


def pick_subnet() -> int:
    used = sh("ip", "-o", "-4", "addr", check=False).stdout
    for r in list(range(os.getpid() % 200 + 20, 250)) + list(range(20, 250)):
        if f"10.{r}.1." not in used and f"10.{r}.2." not in used:
            return r
    raise RuntimeError("no free 10.R.1.0/24 + 10.R.2.0/24 pair for the rig's links")


class SimRig(Rig):
    kind = "sim"

    def __init__(self, *a):
        super().__init__(*a)
        if not self.posedge_bin:
            raise SystemExit("the sim rig needs the posedge binary: --posedge-bin PATH or POSEDGE_BIN")
        self.posedge_bin = str(Path(self.posedge_bin).resolve())
        self.agent = None
        self.ns = None
        self.agent_cfg: Path | None = None
        self.agent_log = None
        self.broker = None
        self.printer: RecordingPrinter | None = None
        self.restarts = 0
        regs = self.spec.get("registers", {})
        self.serial_baud = int(regs.get("serial_baud", 115200))
        self.unplug_every = int(regs.get("serial_unplug_every", 25))

    # the world ------------------------------------------------------------------------
    def setup(self):
        if os.geteuid() != 0:
            raise SystemExit("the sim rig needs root (network namespaces)")
        sweep_stale_namespaces(self.log)
        r = pick_subnet()
        pid = os.getpid()
        self.ns = f"{NS_PREFIX}{pid}"
        n = pid % 100000
        self.lan_h, self.lan_a = f"10.{r}.1.1", f"10.{r}.1.2"
        self.up_h, self.up_a = f"10.{r}.2.1", f"10.{r}.2.2"
        self.if_lan, self.if_up = f"phl{n}h", f"phu{n}h"
        procs.on_exit(self._del_netns)
        sh("ip", "netns", "add", self.ns)
        ns = ["ip", "netns", "exec", self.ns]
        for host_if, host_ip, ns_ip in [(self.if_lan, self.lan_h, self.lan_a), (self.if_up, self.up_h, self.up_a)]:
            peer = host_if[:-1] + "a"
            sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", peer, "netns", self.ns)
            sh("ip", "addr", "add", f"{host_ip}/24", "dev", host_if)
            sh("ip", "link", "set", host_if, "up")
            sh(*ns, "ip", "addr", "add", f"{ns_ip}/24", "dev", peer)
            sh(*ns, "ip", "link", "set", peer, "up")
        sh(*ns, "ip", "link", "set", "lo", "up")
        self.log(f"sim rig: netns {self.ns}, LAN {self.lan_h}<->{self.lan_a} ({self.if_lan}), "
                 f"uplink {self.up_h}<->{self.up_a} ({self.if_up})")
        self.pki = make_pki(self.work / "pki", [self.up_h, "127.0.0.1"], ["localhost"], ["agent", "cloud"])
        self.broker_port = 8883
        self._write_broker_conf()
        self._start_broker()
        self.printer = RecordingPrinter(self.lan_h, 0)
        self.metrics_addr = f"{self.lan_a}:9898"
        simdrivers.WORLD = self
        self.open_labgrid()

    def _del_netns(self):
        procs.kill(self.agent)
        if not getattr(self, "ns", None):
            return
        sh("ip", "netns", "del", self.ns, check=False)
        # Deleting the namespace deletes the veth pairs; make sure of it.
        for i in (self.if_lan, self.if_up):
            sh("ip", "link", "del", i, check=False)

    def teardown(self):
        try:
            self.stop_agent()
            procs.kill(self.broker, signal.SIGTERM)
            if self.printer:
                self.printer.close()
            if self.target is not None:
                self.target.cleanup()
        finally:
            self._del_netns()
            simdrivers.WORLD = None

    def _write_broker_conf(self):
        d = self.work / "broker"
        d.mkdir(parents=True, exist_ok=True)
        server_cert, server_key = self.pki["server"]
        self.broker_conf = d / "mosquitto.conf"
        self.broker_conf.write_text(
            f"listener {self.broker_port} {self.up_h}\nuser root\n"
            f"cafile {self.pki['ca']}\ncertfile {server_cert}\nkeyfile {server_key}\n"
            "require_certificate true\ntls_version tlsv1.2\nallow_anonymous true\n"
            f"persistence true\npersistence_location {d}/\n"
            "max_inflight_messages 1000\nmax_queued_messages 3000000\nmax_queued_bytes 0\n"
            f"log_dest file {d}/mosquitto.log\nlog_type error\nlog_type warning\nlog_type notice\n"
        )

    def _start_broker(self):
        self.broker = procs.spawn(["mosquitto", "-c", self.broker_conf],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.up_h, self.broker_port, True, 15):
            raise RuntimeError(f"mosquitto did not listen (see {self.broker_conf.parent}/mosquitto.log)")

    # what the labgrid drivers switch ------------------------------------------------
    def switch(self, part: str, on: bool):
        if part == "agent":
            if on:
                self._spawn_agent()
                self.restarts += 1
            else:
                procs.kill(self.agent, signal.SIGKILL)
        elif part == "uplink":
            sh("ip", "link", "set", self.if_up, "up" if on else "down")
        elif part == "broker":
            if on:
                self._start_broker()
            else:
                procs.kill(self.broker, signal.SIGTERM, wait=30)
                wait_port(self.up_h, self.broker_port, False, 10)
        elif part == "printer":
            if on:
                self.printer.wait_up()
            else:
                self.printer._unplug()

    def is_on(self, part: str) -> bool:
        if part == "agent":
            return self.agent is not None and self.agent.poll() is None
        if part == "uplink":
            return "UP" in sh("ip", "-o", "link", "show", self.if_up).stdout.split("<")[1].split(">")[0]
        if part == "broker":
            return self.broker is not None and self.broker.poll() is None
        return self.printer._up.is_set()

    # the agent -------------------------------------------------------------------------
    def serial_link(self, name: str) -> Path:
        return self.scenario_dir / f"tty-{name}"

    def start_agent(self, layout: Layout, scenario_dir: Path):
        self.layout = layout
        self.scenario_dir = scenario_dir
        scenario_dir.mkdir(parents=True, exist_ok=True)
        agent_cert, agent_key = self.pki["agent"]
        cfg = render_config(
            layout,
            outbox=str(scenario_dir / "outbox.db"),
            url=f"mqtts://{self.up_h}:{self.broker_port}",
            ca=str(self.pki["ca"]), cert=str(agent_cert), key=str(agent_key),
            lan_host=self.lan_a,
            lan_base_port=7800,
            serial_devices={n: str(self.serial_link(n)) for n in layout.serial},
            serial_baud=self.serial_baud,
            printer_listen=f"{self.lan_a}:9100",
            printer_target=f"{self.lan_h}:{self.printer.port}",
            metrics_listen=f"{self.lan_a}:9898",
            backoff_cap_ms=int(self.spec.get("backoff_cap_ms", 1000)),
        )
        self.agent_cfg = scenario_dir / "posedge.toml"
        self.agent_cfg.write_text(cfg)
        chk = sh(self.posedge_bin, "check-config", self.agent_cfg, check=False)
        self.log(f"agent config {self.agent_cfg}: check-config exit {chk.returncode}")
        if chk.returncode != 0:
            raise RuntimeError(f"check-config refused the rig's config: {chk.stderr.strip()}")
        self._spawn_agent()

    def _spawn_agent(self):
        log = open(self.scenario_dir / "agent.log", "ab")
        env = dict(os.environ, RUST_LOG=os.environ.get("POSEDGE_HIL_RUST_LOG", "posedge=info,warn"))
        if self.spec.get("agent", "posedge") == "lossy-stub":
            # The negative control: a stand-in that acks before storing and drops lines.
            env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
            cmd = [sys.executable, "-m", "posedge_hil.lossy_agent", "--config", self.agent_cfg,
                   "--drop-every", str(self.spec.get("lossy_drop_every", 10)),
                   "--hold-ms", str(self.spec.get("lossy_hold_ms", 0))]
        else:
            cmd = [self.posedge_bin, "run", "--config", self.agent_cfg]
        self.agent = procs.spawn(["ip", "netns", "exec", self.ns, *cmd], stdout=subprocess.DEVNULL,
                                 stderr=log, env=env)
        log.close()
        if not wait_port(self.lan_a, 7801, True, 20):
            raise RuntimeError(f"the agent did not listen on {self.lan_a}:7801 (see {self.scenario_dir}/agent.log)")

    def power_restore_wait(self):
        pass  # _spawn_agent waited for the LAN port

    def stop_agent(self):
        procs.kill(self.agent, signal.SIGTERM, wait=10)
        self.agent = None

    def agent_pid(self):
        a = self.agent
        return a.pid if a is not None and a.poll() is None else None

    def agent_sample(self):
        pid = self.agent_pid()
        return procs.proc_sample(pid) if pid else None

    def lan_addr(self, i: int):
        return self.lan_a, 7800 + i

    def status(self) -> dict:
        out = sh(self.posedge_bin, "status", "--json", "--config", self.agent_cfg, check=False)
        try:
            return json.loads(out.stdout)
        except ValueError:
            return {}

    def serial_sim_args(self, name: str) -> list[str]:
        return ["--pty", "--pty-link", str(self.serial_link(name)), "--baud", str(self.serial_baud),
                "--unplug-every", str(self.unplug_every)]

    def serial_unplug_driver(self, name: str) -> str | None:
        return None  # in-band: the simulated register closes and reopens its pty itself

    def subscriber_params(self):
        cert, key = self.pki["cloud"]
        return self.up_h, self.broker_port, self.pki["ca"], cert, key

    def journal(self, dest: Path) -> dict:
        log = self.scenario_dir / "agent.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        return {"lines": len(text.splitlines()), "errors": len(re.findall(r"Z +ERROR ", text)),
                "warnings": len(re.findall(r"Z +WARN ", text))}
