"""Rigs: a labgrid environment YAML (targets with their resources and drivers) plus a
`posedge:` section saying what is wired where. Two kinds:

* `sim`: everything on this machine (SimRig): the agent in its own network namespace,
  joined to the host by two veth links (LAN and uplink), a local TLS Mosquitto, simulated
  registers on TCP and ptys, a recording printer. Actions go through the labgrid drivers of
  hil/posedge_hil/simdrivers.py.
* `ssh`: a store box reached over SSH running the aarch64 build under systemd (SshRig).
  Actions go through labgrid's ExternalPowerDriver (relay or smart PDU, uhubctl, switch
  port, broker restart) and SSHDriver. `--dry-run` prints every command instead.
"""

from __future__ import annotations

import json
import shlex
import socket
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
HIL = HERE.parent
REPO = HIL.parent


@dataclass
class Layout:
    """What a scenario needs wired to the agent."""

    store: str
    lan: int = 2
    serial: list[str] = field(default_factory=list)
    printer: bool = False
    max_bytes: str = "512MiB"
    max_inflight: int = 256


def render_config(
    layout: Layout,
    *,
    outbox: str,
    url: str,
    ca: str,
    cert: str,
    key: str,
    lan_host: str,
    lan_base_port: int,
    serial_devices: dict[str, str],
    serial_baud: int,
    printer_listen: str | None,
    printer_target: str | None,
    metrics_listen: str,
    backoff_cap_ms: int,
) -> str:
    """The agent's posedge.toml for a scenario (DESIGN §5 keys)."""
    out = [
        'tenant = "hil"',
        f'store_id = "{layout.store}"',
        "",
        "[outbox]",
        f'path = "{outbox}"',
        f'max_bytes = "{layout.max_bytes}"',
        'min_free_disk = "256MiB"',
        "",
        "[uplink]",
        f'url = "{url}"',
        f'ca = "{ca}"',
        f'cert = "{cert}"',
        f'key = "{key}"',
        "keep_alive_s = 5",
        "backoff_floor_ms = 100",
        f"backoff_cap_ms = {backoff_cap_ms}",
        f"max_inflight = {layout.max_inflight}",
        "",
        "[metrics]",
        f'listen = "{metrics_listen}"',
        "",
    ]
    for i in range(1, layout.lan + 1):
        out += [
            "[[source]]",
            f'name = "lane{i}"',
            'kind = "tcp"',
            f'listen = "{lan_host}:{lan_base_port + i}"',
            'format = "ndjson"',
            f'register_id = "reg-{i}"',
            "",
        ]
    for name in layout.serial:
        out += [
            "[[source]]",
            f'name = "{name}"',
            'kind = "serial"',
            f'device = "{serial_devices[name]}"',
            f"baud = {serial_baud}",
            'framing = "stx_etx"',
            'format = "kv"',
            'currency = "EUR"',
            f'register_id = "reg-{name}"',
            "",
        ]
    if layout.printer and printer_listen and printer_target:
        out += [
            "[[source]]",
            'name = "printer1"',
            'kind = "printer"',
            f'listen = "{printer_listen}"',
            f'printer = "{printer_target}"',
            'register_id = "reg-p1"',
            'code_page = "cp858"',
            "",
        ]
    return "\n".join(out) + "\n"


def load_rig_file(path: Path) -> dict:
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or "posedge" not in data or "targets" not in data:
        raise SystemExit(f"{path}: a rig file needs `targets:` (labgrid) and `posedge:`")
    return data


def open_rig(path: Path, work: Path, posedge_bin: str | None, dry_run: bool, log):
    data = load_rig_file(path)
    kind = data["posedge"].get("kind")
    if kind == "sim":
        from .simrig import SimRig

        return SimRig(path, data, work, posedge_bin, dry_run, log)
    if kind == "ssh":
        return SshRig(path, data, work, posedge_bin, dry_run, log)
    raise SystemExit(f"{path}: posedge.kind must be sim or ssh, not {kind!r}")


def wait_port(host: str, port: int, up: bool, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                is_up = True
        except OSError:
            is_up = False
        if is_up == up:
            return True
        time.sleep(0.1)
    return False


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {name{labels}: value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        try:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
        except ValueError:
            continue
    return out


class Rig:
    """What the scenarios use; SimRig and SshRig fill it in."""

    kind = "?"

    def __init__(self, path: Path, data: dict, work: Path, posedge_bin, dry_run: bool, log):
        self.path = Path(path)
        self.data = data
        self.spec = data["posedge"]
        self.work = work
        self.posedge_bin = posedge_bin
        self.dry_run = dry_run
        self.log = log
        self.compression = float(self.spec.get("time_compression", 1))
        self.target_name = self.spec.get("target", "main")
        self.env = None
        self.target = None
        self.layout: Layout | None = None

    # labgrid ----------------------------------------------------------------------
    def open_labgrid(self):
        from labgrid import Environment

        self.env = Environment(str(self.path))
        self.target = self.env.get_target(self.target_name)
        if self.target is None:
            raise SystemExit(f"{self.path}: no labgrid target {self.target_name!r}")

    def driver_config(self, name: str) -> tuple[str, dict]:
        """The YAML of the driver called `name` on our target: (class, args)."""
        drivers = self.data["targets"][self.target_name].get("drivers", [])
        items = drivers.items() if isinstance(drivers, dict) else [
            next(iter(d.items())) for d in drivers
        ]
        for cls, args in items:
            if (args or {}).get("name") == name:
                return cls, args or {}
        raise SystemExit(f"{self.path}: no driver named {name!r} on target {self.target_name}")

    def power(self, name: str, on: bool):
        """Switches the labgrid PowerProtocol driver `name` (power, uplink, broker, ...)."""
        cls, args = self.driver_config(name)
        what = "on" if on else "off"
        if self.dry_run:
            cmd = args.get("cmd_on" if on else "cmd_off")
            self.log(f"[{name} {what}] " + (cmd if cmd else f"{cls}.{what}()"))
            return
        self.log(f"[{name} {what}] via {cls}")
        drv = self.target.get_driver("PowerProtocol", name=name)
        drv.on() if on else drv.off()

    def sleep(self, s: float):
        if self.dry_run:
            self.log(f"sleep {s:g}")
        else:
            time.sleep(s)

    def scaled(self, real_s: float) -> float:
        """A rig duration for `real_s` seconds of store time."""
        return real_s / self.compression

    # to be filled in --------------------------------------------------------------
    def setup(self): ...
    def teardown(self): ...
    def start_agent(self, layout: Layout, scenario_dir: Path): ...
    def stop_agent(self): ...
    def agent_pid(self) -> int | None: ...
    def agent_sample(self) -> tuple[int, float] | None: ...
    def lan_addr(self, i: int) -> tuple[str, int]: ...
    def status(self) -> dict: ...

    def metrics(self) -> dict[str, float]:
        addr = self.spec.get("metrics") or self.metrics_addr
        try:
            with urllib.request.urlopen(f"http://{addr}/metrics", timeout=2) as r:
                return parse_metrics(r.read().decode())
        except OSError:
            return {}

    def pending(self) -> int | None:
        m = self.metrics()
        v = m.get("posedge_outbox_pending_events")
        return int(v) if v is not None else None


class SshRig(Rig):
    """A store box over SSH: deploys the aarch64 build and the unit, drives systemd, reads
    the journal and the metrics; actions through labgrid drivers. In dry-run mode every
    command is printed and nothing is run."""

    kind = "ssh"

    def __init__(self, *a):
        super().__init__(*a)
        t = self.data["targets"][self.target_name]
        ns = (t.get("resources") or {}).get("NetworkService") or {}
        self.host = ns.get("address")
        self.user = ns.get("username", "root")
        if not self.host:
            raise SystemExit(f"{self.path}: target {self.target_name} needs a NetworkService resource")
        self.dut = self.spec.get("dut", {})
        self.deploy_spec = self.spec.get("deploy", {})
        self.metrics_addr = self.dut.get("metrics", f"{self.host}:9898")
        self.lan_host = self.dut.get("lan_address", self.host)
        self.lan_base_port = int(self.spec.get("registers", {}).get("lan", {}).get("base_port", 7800))
        self.started_at = time.time()
        self.ssh = None
        self.printer = None

    # SSH ---------------------------------------------------------------------------
    def _ssh_argv(self, cmd: str) -> list[str]:
        return ["ssh", "-o", "BatchMode=yes", f"{self.user}@{self.host}", cmd]

    def run(self, cmd: str, check=True) -> str:
        if self.dry_run:
            self.log("$ " + shlex.join(self._ssh_argv(cmd)))
            return ""
        out, err, code = self.ssh.run(cmd)
        if check and code != 0:
            raise RuntimeError(f"on {self.host}: `{cmd}` exited {code}: {' '.join(err)}")
        return "\n".join(out)

    def put(self, local: Path, remote: str):
        if self.dry_run:
            self.log("$ " + shlex.join(["scp", "-o", "BatchMode=yes", str(local), f"{self.user}@{self.host}:{remote}"]))
            return
        self.ssh.put(str(local), remote)

    def setup(self):
        self.open_labgrid()
        if not self.dry_run:
            self.ssh = self.target.get_driver("SSHDriver")
        if self.deploy_spec.get("enabled", True):
            self.deploy()
        rec = self.spec.get("registers", {}).get("printer", {}).get("recorder_listen")
        if rec:
            host, port = rec.rsplit(":", 1)
            if self.dry_run:
                self.log(f"# recording printer listens on {rec} (the tap's `printer`)")
            else:
                from .printer import RecordingPrinter

                self.printer = RecordingPrinter(host, int(port))

    def deploy(self):
        """Installs the aarch64 binary, the unit, the user and the certificates."""
        binary = REPO / self.deploy_spec.get("binary", "target/cross/aarch64-unknown-linux-gnu/release/posedge")
        unit = REPO / self.deploy_spec.get("unit", "systemd/posedge.service")
        if not binary.exists():
            msg = f"{binary} is missing: build it with cross/build-aarch64"
            if not self.dry_run:
                raise SystemExit(msg)
            self.log(f"# note: {msg}")
        self.log(f"# deploy {binary.name} and {unit.name} to {self.user}@{self.host}")
        self.put(binary, "/usr/bin/posedge.new")
        self.run("install -m 0755 /usr/bin/posedge.new /usr/bin/posedge && rm /usr/bin/posedge.new")
        self.put(unit, "/etc/systemd/system/posedge.service")
        self.run("id posedge >/dev/null 2>&1 || useradd --system --no-create-home "
                 "--shell /usr/sbin/nologin --groups dialout posedge")
        self.run("install -d -m 0750 -o root -g posedge /etc/posedge && "
                 "install -d -m 0750 -o posedge -g posedge /var/lib/posedge")
        b = self.spec["broker"]
        for local, remote in [(b["ca"], "ca.pem"), (b["agent_cert"], "agent.pem"), (b["agent_key"], "agent.key")]:
            self.put(self.resolve(local), f"/etc/posedge/{remote}")
        self.run("chown root:posedge /etc/posedge/*.pem /etc/posedge/*.key && chmod 0640 /etc/posedge/*")
        self.run("systemctl daemon-reload")
        self.run("/usr/bin/posedge --version")

    def resolve(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else (self.path.parent / q)

    def start_agent(self, layout: Layout, scenario_dir: Path):
        self.layout = layout
        regs = self.spec.get("registers", {})
        serial = {s["name"]: s["box_device"] for s in regs.get("serial", [])}
        p = regs.get("printer", {})
        b = self.spec["broker"]
        cfg = render_config(
            layout,
            outbox="/var/lib/posedge/outbox.db",
            url=f"mqtts://{b['host']}:{b.get('port', 8883)}",
            ca="/etc/posedge/ca.pem", cert="/etc/posedge/agent.pem", key="/etc/posedge/agent.key",
            lan_host=self.dut.get("listen", "0.0.0.0"),
            lan_base_port=self.lan_base_port,
            serial_devices=serial,
            serial_baud=int(regs.get("serial_baud", 115200)),
            printer_listen=p.get("tap_listen", "0.0.0.0:9100"),
            printer_target=p.get("recorder"),
            metrics_listen=self.dut.get("metrics_listen", "0.0.0.0:9898"),
            backoff_cap_ms=int(self.spec.get("backoff_cap_ms", 5000)),
        )
        local = scenario_dir / "posedge.toml"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(cfg)
        self.started_at = time.time()
        self.run("systemctl stop posedge || true")
        self.run("rm -f /var/lib/posedge/outbox.db /var/lib/posedge/outbox.db-wal /var/lib/posedge/outbox.db-shm")
        self.put(local, "/etc/posedge/posedge.toml")
        self.run("chown root:posedge /etc/posedge/posedge.toml && chmod 0640 /etc/posedge/posedge.toml")
        self.run("posedge check-config /etc/posedge/posedge.toml")
        self.run("systemctl start posedge && systemctl is-active posedge")
        self.wait_lan(layout, float(self.dut.get("start_timeout_s", 60)))

    def wait_lan(self, layout: Layout, timeout: float):
        if self.dry_run:
            self.log(f"# wait for {self.lan_host}:{self.lan_base_port + 1} to accept connections")
            return
        if not wait_port(self.lan_host, self.lan_base_port + 1, True, timeout):
            raise RuntimeError(f"the agent on {self.host} did not listen within {timeout:g}s")

    def power_restore_wait(self):
        """After power comes back the box boots and systemd starts the agent."""
        self.wait_lan(self.layout, float(self.dut.get("boot_timeout_s", 180)))

    def stop_agent(self):
        self.run("systemctl stop posedge || true")

    def main_pid(self) -> int | None:
        out = self.run("systemctl show -p MainPID --value posedge", check=False)
        try:
            return int(out.strip()) or None
        except ValueError:
            return None

    def agent_pid(self):
        return self.main_pid()

    def agent_sample(self):
        if self.dry_run:
            return None
        out = self.run(
            "p=$(systemctl show -p MainPID --value posedge); "
            "grep VmRSS /proc/$p/status; cut -d' ' -f14,15 /proc/$p/stat; getconf CLK_TCK",
            check=False,
        )
        try:
            lines = out.split("\n")
            rss = int(lines[0].split()[1])
            ut, st = (int(x) for x in lines[1].split())
            return rss, (ut + st) / int(lines[2])
        except (ValueError, IndexError):
            return None

    def journal(self, dest: Path) -> dict:
        """The agent's journal since the scenario started (`journalctl -o json`)."""
        out = self.run(f"journalctl -u posedge -o json --no-pager --since @{int(self.started_at)}", check=False)
        dest.write_text(out)
        prio = {}
        for line in out.splitlines():
            try:
                p = int(json.loads(line).get("PRIORITY", 6))
            except ValueError:
                continue
            prio[p] = prio.get(p, 0) + 1
        return {"lines": sum(prio.values()), "errors": sum(n for p, n in prio.items() if p <= 3),
                "warnings": prio.get(4, 0)}

    def lan_addr(self, i: int):
        return self.lan_host, self.lan_base_port + i

    def subscriber_params(self):
        b = self.spec["broker"]
        return (b["host"], int(b.get("port", 8883)), self.resolve(b["ca"]),
                self.resolve(b["cloud_cert"]), self.resolve(b["cloud_key"]))

    def serial_sim_args(self, name: str) -> list[str]:
        """The simulated register drives the HIL PC's end of the null-modem pair."""
        for s in self.spec.get("registers", {}).get("serial", []):
            if s["name"] == name:
                return ["--serial", s["hil_device"], "--baud", str(s.get("baud", 115200))]
        raise SystemExit(f"{self.path}: no serial register {name!r}")

    def serial_unplug_driver(self, name: str) -> str | None:
        for s in self.spec.get("registers", {}).get("serial", []):
            if s["name"] == name:
                return s.get("unplug_driver")
        return None

    def status(self) -> dict:
        out = self.run("posedge status --json --config /etc/posedge/posedge.toml", check=False)
        try:
            return json.loads(out)
        except ValueError:
            return {}

    def teardown(self):
        if self.env is not None and self.target is not None and not self.dry_run:
            self.target.cleanup()
