"""The scenarios. Each one wires the agent (a fresh outbox and its own store id, so its
topics are its own), starts simulated registers that write ledgers, does its faults
through the rig's labgrid drivers, waits for the cloud subscriber, and compares.

The same code runs in dry-run mode, where every command is printed instead of run and
no verdict is drawn.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import procs
from .check import Verdict, compare, compare_printer, read_ledger
from .rig import Layout, Rig
from .subscriber import Subscriber

BUSINESS_DAY = "2026-11-27"


@dataclass
class Register:
    name: str
    cmd: list[str]
    ledger: Path
    out: Path
    proc: subprocess.Popen | None = None
    report: dict = field(default_factory=dict)
    exit_code: int | None = None


@dataclass
class Result:
    name: str
    title: str
    ok: bool = False
    planned: bool = False
    failures: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    peak_rss_kib: int = 0
    cpu_s: float = 0.0
    faults: int = 0


class Ctx:
    """One scenario's run on a rig."""

    def __init__(self, rig: Rig, name: str, title: str, root: Path, log):
        self.rig = rig
        self.dry = rig.dry_run
        self.name = name
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.result = Result(name=name, title=title)
        self.registers: list[Register] = []
        self.sub: Subscriber | None = None
        self.sampler = None
        self.store = f"hil-{name.replace('_', '-')}"
        self.t0 = time.time()
        self.params: dict = {}
        self.metrics_missing_noted = False

    # set-up ----------------------------------------------------------------------------
    def start(self, layout: Layout):
        layout.store = self.store
        self.layout = layout
        host, port, ca, cert, key = self.rig.subscriber_params()
        prefix = f"posedge/v1/hil/{self.store}"
        if self.dry:
            self.log(f"# cloud subscriber: mqtts://{host}:{port} (MQTT 5, persistent session, "
                     f"client cert {cert}) on {prefix}/+/<event_type>, QoS 1")
        else:
            self.sub = Subscriber(host, port, ca, cert, key, prefix, f"hil-cloud-{self.store}-{int(self.t0)}")
            if not self.sub.wait_subscribed(20):
                raise RuntimeError("the cloud subscriber could not subscribe")
        self.rig.start_agent(layout, self.dir)
        if not self.dry:
            self.sampler = procs.Sampler(self.rig.agent_pid, period=0.5,
                                         sample_fn=lambda pid: self.rig.agent_sample())

    def sim_cmd(self) -> list[str]:
        return [self.rig.posedge_bin or "posedge", "sim"]

    def lan_register(self, i: int, count: int, rate: int, seed: int = 1, window: int = 64,
                     extra: list[str] | None = None, day: str = BUSINESS_DAY) -> Register:
        host, port = self.rig.lan_addr(i)
        name = f"reg-{i}"
        ledger = self.dir / f"ledger-{name}.ndjson"
        cmd = self.sim_cmd() + [
            "--tcp", f"{host}:{port}", "--count", str(count), "--rate", str(rate),
            "--window", str(window), "--seed", str(seed), "--register", name,
            "--store", self.store, "--business-day", day, "--ledger", str(ledger),
            "--give-up-s", str(int(self.rig.spec.get("register_give_up_s", 600))),
        ] + (extra or [])
        return self._start_register(name, cmd, ledger)

    def serial_register(self, sname: str, count: int, rate: int, seed: int = 1) -> Register:
        name = f"reg-{sname}"
        ledger = self.dir / f"ledger-{name}.ndjson"
        cmd = self.sim_cmd() + self.rig.serial_sim_args(sname) + [
            "--framing", "stx_etx", "--format", "kv", "--answer-timeout-ms", "1000",
            "--count", str(count), "--rate", str(rate), "--seed", str(seed), "--register", name,
            "--store", self.store, "--business-day", BUSINESS_DAY, "--ledger", str(ledger),
            "--give-up-s", str(int(self.rig.spec.get("register_give_up_s", 600))),
        ]
        return self._start_register(name, cmd, ledger)

    def printer_register(self, tag: str, count: int, rate: int, seed: int) -> Register:
        host, _ = self.rig.lan_addr(0)
        ledger = self.dir / f"ledger-printer-{tag}.ndjson"
        cmd = self.sim_cmd() + [
            "--printer", f"{host}:9100", "--count", str(count), "--rate", str(rate), "--seed", str(seed),
            "--register", "reg-p1", "--store", self.store, "--business-day", BUSINESS_DAY,
            "--ledger", str(ledger),
        ]
        return self._start_register(f"printer-{tag}", cmd, ledger)

    def _start_register(self, name, cmd, ledger) -> Register:
        out = self.dir / f"sim-{name}.out"
        r = Register(name=name, cmd=[str(c) for c in cmd], ledger=ledger, out=out)
        if self.dry:
            self.log("$ " + " ".join(r.cmd) + " &")
        else:
            with open(out, "wb") as f:
                r.proc = procs.spawn(r.cmd, stdout=f, stderr=subprocess.STDOUT)
        self.registers.append(r)
        return r

    # waiting ---------------------------------------------------------------------------
    def running(self, regs=None) -> bool:
        return any(r.proc is not None and r.proc.poll() is None for r in (regs or self.registers))

    def wait_registers(self, regs=None, timeout: float = 600) -> bool:
        regs = regs or self.registers
        if self.dry:
            self.log(f"# wait for {', '.join(r.name for r in regs)} to finish")
            return True
        end = time.time() + timeout
        while time.time() < end and self.running(regs):
            time.sleep(0.1)
        ok = True
        for r in regs:
            if r.proc.poll() is None:
                procs.kill(r.proc)
                ok = False
            r.exit_code = r.proc.returncode
            try:
                r.report = json.loads(r.out.read_text().strip().splitlines()[-1])
            except (ValueError, IndexError, FileNotFoundError):
                r.report = {}
        return ok

    def wait_until(self, what: str, f, timeout: float, period: float = 0.05, stall_s: float | None = None) -> bool:
        """Polls `f` until it holds or `timeout`; with `stall_s`, gives up early once nothing
        has arrived at the subscriber for that long while the agent holds nothing (or has
        no metrics): waiting longer cannot help."""
        if self.dry:
            self.log(f"# wait until {what}")
            return True
        end = time.time() + timeout
        last_n, last_change = -1, time.time()
        while time.time() < end:
            if f():
                return True
            if stall_s is not None and self.sub is not None:
                n = self.sub.count()
                if n != last_n:
                    last_n, last_change = n, time.time()
                elif time.time() - last_change > stall_s and (self.pending() or 0) == 0:
                    self.log(f"# gave up waiting until {what}: nothing arrived for {stall_s:g} s")
                    return False
            time.sleep(period)
        return False

    def ledger(self, regs=None) -> list[dict]:
        out = []
        for r in regs or self.registers:
            if not r.name.startswith("printer"):
                out += read_ledger(r.ledger)
        return out

    def acked_keys(self) -> set[str]:
        return {e["idempotency_key"] for e in self.ledger() if e.get("acked") is True}

    def wait_delivered(self, timeout: float) -> bool:
        """Until every acked key is at the subscriber, then a settle for late duplicates."""
        if self.dry:
            self.log("# wait until every acked idempotency key reached the subscriber")
            return True
        want = self.acked_keys()
        ok = self.wait_until("all acked delivered", lambda: want <= self.sub.keys(), timeout, 0.5,
                             stall_s=float(self.rig.spec.get("stall_s", 30)))
        time.sleep(1.5)
        return ok

    def pending(self) -> int | None:
        return None if self.dry else self.rig.pending()

    def drained(self, regs) -> bool:
        """The agent's outbox is empty; without metrics (a stand-in agent), the registers
        are done and every key they had acked has arrived."""
        p = self.pending()
        if p is not None:
            return p == 0
        if not self.metrics_missing_noted:
            self.note("the agent's metrics were unreachable: drain judged by the subscriber")
            self.metrics_missing_noted = True
        return not self.running(regs) and self.acked_keys() <= self.sub.keys()

    def fail(self, msg: str):
        self.result.failures.append(msg)

    def note(self, msg: str):
        self.result.notes.append(msg)

    # the end ---------------------------------------------------------------------------
    def finish(self, dup_bound: int, exclude_types=("receipt",)) -> Result:
        res = self.result
        res.wall_s = time.time() - self.t0
        if self.dry:
            res.planned = True
            res.ok = True
            self.rig.journal(self.dir / "journal.json")
            self.rig.stop_agent()
            return res
        everything = self.sub.deliveries()
        if len(everything) <= 200_000:
            with open(self.dir / "deliveries.ndjson", "w") as f:
                for d in everything:
                    f.write(json.dumps(asdict(d)) + "\n")
        else:
            self.note(f"deliveries.ndjson not written ({len(everything)} deliveries)")
        deliveries = [d for d in everything if d.event_type not in exclude_types]
        v = compare(self.ledger(), deliveries, dup_bound)
        res.verdict = v
        res.failures = v.failures + res.failures
        for r in self.registers:
            if r.exit_code not in (0, None) and not r.name.startswith("printer"):
                res.failures.append(f"register {r.name} exited {r.exit_code} (see {r.out.name})")
        if self.sampler:
            self.sampler.stop()
            res.peak_rss_kib = self.sampler.peak_rss_kib
            res.cpu_s = self.sampler.cpu_s
        res.extra.setdefault("journal", self.rig.journal(self.dir / "journal.json"))
        st = self.rig.status()
        res.extra["dead_letters"] = (st.get("outbox") or {}).get("dead_letters", st.get("dead_letters"))
        self.rig.stop_agent()
        if self.sub:
            self.sub.stop()
        res.ok = not res.failures
        return res

    def cleanup(self):
        for r in self.registers:
            procs.kill(r.proc)
        if self.sampler:
            self.sampler.stop()
        if self.sub:
            try:
                self.sub.stop()
            except Exception:  # noqa: BLE001
                pass


# --- the scenarios ------------------------------------------------------------------------


def power_cut_burst(ctx: Ctx):
    """Power cut during a burst: 4 LAN registers at up to 1,000 events/s each (window 64);
    three power cuts 1.7 s apart, each 1 s dark. Registers re-send what was not acked."""
    rig = ctx.rig
    ctx.start(Layout(store="", lan=4))
    per = int(ctx.params.get("per_register", 6000))
    rate = int(ctx.params.get("rate", 1000))
    regs = [ctx.lan_register(i, per, rate, seed=i) for i in range(1, 5)]
    rig.sleep(1.0)
    cuts = 0
    for _ in range(3):
        if not ctx.dry and not ctx.running(regs):
            ctx.fail(f"the burst ended before power cut {cuts + 1}: the cut was not during a burst")
            break
        rig.power("power", False)
        cuts += 1
        rig.sleep(float(rig.spec.get("power_off_s", 1.0)))
        rig.power("power", True)
        rig.power_restore_wait()
        rig.sleep(0.7)
    ctx.result.faults = cuts
    ctx.wait_registers(regs, timeout=600)
    ctx.wait_delivered(300)
    reconnects = sum(r.report.get("reconnects", 0) for r in regs)
    ctx.result.extra.update(power_cuts=cuts, register_reconnects=reconnects,
                            resent=sum(r.report.get("resent", 0) for r in regs))
    if not ctx.dry and cuts and reconnects == 0:
        ctx.fail("no register saw the power cut (no reconnect)")
    bound = cuts * 2 * ctx.layout.max_inflight
    ctx.note(f"duplicate bound: 2 × max_inflight ({ctx.layout.max_inflight}) per power cut")
    return ctx.finish(bound)


def serial_unplug(ctx: Ctx):
    """Serial unplug/replug under traffic: a stx_etx kv register at 100 frames/s with an
    unplug every 25th frame (sim: half a frame, then the pty goes; real: uhubctl cuts the
    adapter's port), next to a LAN register at 100 events/s."""
    rig = ctx.rig
    ctx.start(Layout(store="", lan=1, serial=["ser1"]))
    count = int(rig.spec.get("serial_frames", 600))
    ser = ctx.serial_register("ser1", count, 100, seed=3)
    lan = ctx.lan_register(1, count, 100, seed=4)
    drv = rig.serial_unplug_driver("ser1")
    unplugs = 0
    if drv:
        # Driven from outside: port power off for 2 s every 5 s while traffic runs.
        for _ in range(int(rig.spec.get("serial_unplugs", 5))):
            rig.sleep(3.0)
            rig.power(drv, False)
            rig.sleep(2.0)
            rig.power(drv, True)
            unplugs += 1
    ctx.wait_registers([ser, lan], timeout=600)
    ctx.wait_delivered(120)
    if not drv:
        unplugs = ser.report.get("reconnects", 0)
        expected = count // int(rig.spec.get("registers", {}).get("serial_unplug_every", 25)) - 1
        if not ctx.dry and unplugs < expected:
            ctx.fail(f"only {unplugs} unplugs happened, {expected} expected")
    ctx.result.faults = unplugs
    ctx.result.extra.update(unplugs=unplugs, serial_acked=ser.report.get("acked"),
                            serial_resent=ser.report.get("resent"))
    ctx.note("serial: stx_etx + kv; an unplug tears one frame, which the agent dead-letters and the register re-sends")
    return ctx.finish(0)


def printer_disconnect(ctx: Ctx):
    """Printer disconnected mid-receipt: the printer goes dark 40 bytes into the 6th
    receipt for 2 s; the register prints again afterwards; a LAN register runs alongside."""
    rig = ctx.rig
    ctx.start(Layout(store="", lan=1, printer=True))
    lan = ctx.lan_register(1, 400, 50, seed=5)
    printer = getattr(rig, "printer", None)
    if ctx.dry:
        ctx.log("# recording printer: close the connection 40 bytes after the 5th cut, dark for 2 s")
    else:
        printer.pull_plug_mid_receipt(cut_after=5, tear_bytes=40, down_s=2.0)
    a = ctx.printer_register("a", 20, 10, seed=11)
    ctx.wait_registers([a], timeout=60)
    if ctx.dry:
        ctx.log("# wait until the printer listens again")
    elif not printer.wait_up(30):
        ctx.fail("the printer did not come back")
    rig.sleep(0.5)
    b = ctx.printer_register("b", 10, 10, seed=12)
    ctx.wait_registers([b, lan], timeout=120)
    ctx.wait_delivered(60)
    if ctx.dry:
        return ctx.finish(0)
    rig.sleep(1.0)
    receipts = [d.raw_sha256 for d in ctx.sub.deliveries() if d.event_type == "receipt"]
    streams = printer.streams()
    runs = list(zip([read_ledger(a.ledger), read_ledger(b.ledger)], streams))
    pv = compare_printer(runs, receipts, extra_bound=printer.disconnects)
    ctx.result.faults = printer.disconnects
    ctx.result.extra.update(printer_connections=len(streams), printed_whole=pv.printed, torn=pv.torn,
                            compared_byte_exact=pv.compared, receipts_at_cloud=len(receipts),
                            captured_not_printed=pv.captured_not_printed, unknown_receipts=pv.unknown)
    if len(streams) != 2:
        ctx.fail(f"expected 2 printer connections (before and after the unplug), saw {len(streams)}")
    if printer.disconnects != 1:
        ctx.fail("the printer was not disconnected mid-receipt")
    for f in pv.failures:
        ctx.fail("printer: " + f)
    return ctx.finish(0)


def uplink_cut(ctx: Ctx):
    """Uplink cut for 10 minutes of store time (time-compressed on the simulated rig) with
    two LAN registers at 20 events/s each; the backlog must drain after the restore."""
    rig = ctx.rig
    ctx.start(Layout(store="", lan=2))
    cut = rig.scaled(600)
    pre, post = 3.0, 5.0
    rate = 20
    count = int(rate * (pre + cut + post))
    regs = [ctx.lan_register(i, count, rate, seed=20 + i) for i in (1, 2)]
    rig.sleep(pre)
    at_cut = 0 if ctx.dry else ctx.sub.count()
    rig.power("uplink", False)
    peak = 0
    end = time.time() + cut
    while not ctx.dry and time.time() < end:
        peak = max(peak, ctx.pending() or 0)
        time.sleep(0.25)
    rig.sleep(cut if ctx.dry else 0)
    arrived_during = 0 if ctx.dry else ctx.sub.count() - at_cut
    rig.power("uplink", True)
    restored = time.time()
    drained = ctx.wait_until(f"the backlog is drained (GET http://{rig.metrics_addr}/metrics: "
                             "posedge_outbox_pending_events 0)", lambda: ctx.drained(regs), 300, 0.1,
                             stall_s=float(rig.spec.get("stall_s", 30)))
    drain_s = time.time() - restored
    ctx.wait_registers(regs, timeout=300)
    ctx.wait_delivered(120)
    ctx.result.faults = 1
    ctx.result.extra.update(cut_s=round(cut, 1), store_time_s=600, backlog_peak=peak,
                            arrived_during_cut=arrived_during, drain_s=round(drain_s, 2))
    ctx.note(f"time compression {rig.compression:g}×: 600 s of outage run as {cut:g} s")
    expected = rate * 2 * cut
    if not ctx.dry:
        if peak < 0.5 * expected:
            ctx.fail(f"backlog peaked at {peak}, expected about {expected:.0f}: the uplink was not cut")
        if arrived_during > 2 * ctx.layout.max_inflight:
            ctx.fail(f"{arrived_during} events arrived while the uplink was cut")
        if not drained:
            ctx.fail("the backlog did not drain within 300 s of the restore")
    return ctx.finish(2 * ctx.layout.max_inflight)


def broker_restart(ctx: Ctx):
    """Broker restart mid-drain: 4 registers' events (20,000; 6,000 in the short set) queued with the uplink cut, the uplink
    restored, and the broker restarted (SIGTERM, 2 s down) once about a quarter arrived."""
    rig = ctx.rig
    ctx.start(Layout(store="", lan=4))
    per = int(ctx.params.get("per_register", 5000))
    rig.power("uplink", False)
    regs = [ctx.lan_register(i, per, 0, seed=30 + i) for i in range(1, 5)]
    ctx.wait_registers(regs, timeout=600)
    total = len(ctx.acked_keys()) if not ctx.dry else per * 4
    rig.power("uplink", True)
    ctx.wait_until("a quarter of the backlog arrived", lambda: ctx.sub.count() >= total // 4, 120, 0.02)
    at_restart = 0 if ctx.dry else len(ctx.sub.keys())
    rig.power("broker", False)
    rig.sleep(2.0)
    rig.power("broker", True)
    ctx.wait_delivered(300)
    ctx.result.faults = 2
    ctx.result.extra.update(backlog=total, delivered_at_restart=at_restart)
    if not ctx.dry and not (0 < at_restart < total):
        ctx.fail(f"{at_restart} of {total} had arrived at the restart: not mid-drain")
    ctx.note("duplicate bound: 2 × max_inflight (agent re-sends) + 1000 (the broker's in-flight window "
             "to the subscriber, re-sent after the restart)")
    return ctx.finish(2 * ctx.layout.max_inflight + 1000)


def _parse_ts(s: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def clock_skew(ctx: Ctx):
    """Register clock skew: one register 3 h behind, one 3 h ahead, one 25 h ahead (its
    clock is on the next business day). Events must arrive with the register's
    occurred_at untouched and the agent's own received_at."""
    ctx.start(Layout(store="", lan=3))
    skews = {1: -3 * 3600, 2: 3 * 3600, 3: 25 * 3600}
    now = time.time()
    regs = []
    for i, skew in skews.items():
        day = dt.datetime.fromtimestamp(now + skew, dt.timezone.utc).strftime("%Y-%m-%d")
        regs.append(ctx.lan_register(i, 300, 50, seed=40 + i, extra=["--clock-skew-s", str(skew)], day=day))
    ctx.wait_registers(regs, timeout=120)
    ctx.wait_delivered(60)
    if not ctx.dry:
        bad_occ = bad_recv = checked = 0
        for d in ctx.sub.deliveries():
            i = int(d.register_id.split("-")[-1]) if d.register_id.startswith("reg-") else 0
            if i not in skews:
                continue
            occ, recv = _parse_ts(d.occurred_at), _parse_ts(d.received_at)
            checked += 1
            if occ is None or recv is None or abs((occ - recv) - skews[i]) > 10:
                bad_occ += 1
            if recv is None or abs(recv * 1000 - d.arrival_ms) > 10_000:
                bad_recv += 1
        ctx.result.extra.update(skews_h=[s / 3600 for s in skews.values()], checked=checked,
                                occurred_at_off=bad_occ, received_at_off=bad_recv)
        if checked == 0:
            ctx.fail("no event of the skewed registers arrived")
        if bad_occ:
            ctx.fail(f"{bad_occ} event(s) lost the register's own clock (occurred_at − received_at ≠ skew)")
        if bad_recv:
            ctx.fail(f"{bad_recv} event(s) carry a received_at more than 10 s from the arrival time")
    return ctx.finish(0)


def burst(ctx: Ctx):
    """Burst of 100 transactions/s across 8 registers (13 or 12 events/s each)."""
    rig = ctx.rig
    seconds = float(ctx.params.get("seconds", 60))
    ctx.start(Layout(store="", lan=8))
    rates = [13, 13, 13, 13, 12, 12, 12, 12]
    regs = [ctx.lan_register(i, int(r * seconds), r, seed=50 + i) for i, r in enumerate(rates, 1)]
    ctx.wait_registers(regs, timeout=seconds + 300)
    ctx.wait_delivered(120)
    ctx.result.extra.update(seconds=seconds, rate_per_s=sum(rates))
    budget = rig.spec.get("latency_p99_budget_ms")
    res = ctx.finish(0)
    p99 = (res.verdict.latency_ms or {}).get("p99") if res.verdict else None
    if budget is not None and p99 is not None and p99 > float(budget):
        res.failures.append(f"register→cloud p99 {p99:.1f} ms is over the rig's budget {budget} ms")
        res.ok = False
    return res


def offline_1m(ctx: Ctx):
    """1,000,000 events queued offline (8 registers × 125,000 with the uplink cut), then
    drained: drain rate from the agent's metrics, RSS while draining."""
    rig = ctx.rig
    total = int(rig.spec.get("offline_events", 1_000_000))
    ctx.start(Layout(store="", lan=8, max_bytes="6GiB"))
    rig.power("uplink", False)
    per = total // 8
    t_in = time.time()
    regs = [ctx.lan_register(i, per, 0, seed=60 + i, window=256) for i in range(1, 9)]
    ctx.wait_registers(regs, timeout=3600)
    ingest_s = time.time() - t_in
    queued = ctx.pending()
    rss_before = ctx.sampler.peak_rss_kib if ctx.sampler else 0
    if ctx.sampler:
        ctx.sampler.peak_rss_kib = 0
    rig.power("uplink", True)
    t_drain = time.time()
    drained = ctx.wait_until(f"the outbox is empty (GET http://{rig.metrics_addr}/metrics: "
                             "posedge_outbox_pending_events 0)", lambda: ctx.drained(regs), 3600, 0.2)
    drain_s = time.time() - t_drain
    rss_drain = ctx.sampler.peak_rss_kib if ctx.sampler else 0
    ctx.wait_delivered(1800)
    ctx.result.faults = 1
    if not ctx.dry:
        ctx.result.extra.update(queued=queued, ingest_s=round(ingest_s, 1),
                                ingest_per_s=round(per * 8 / ingest_s) if ingest_s else None,
                                drain_s=round(drain_s, 1),
                                drain_per_s=round((queued or 0) / drain_s) if drain_s else None,
                                rss_ingest_mib=round(rss_before / 1024, 1),
                                rss_drain_mib=round(rss_drain / 1024, 1))
        if not drained:
            ctx.fail("the outbox did not drain within an hour")
        if (queued or 0) < 0.99 * per * 8:
            ctx.fail(f"only {queued} events were queued offline, {per * 8} expected")
    res = ctx.finish(2 * ctx.layout.max_inflight)
    res.peak_rss_kib = max(res.peak_rss_kib, rss_before)
    return res


@dataclass
class Scenario:
    name: str
    fn: object
    title: str
    params: dict = field(default_factory=dict)


ALL = [
    Scenario("power_cut_burst", power_cut_burst, "power cut during a burst", {"per_register": 6000, "rate": 1000}),
    Scenario("serial_unplug", serial_unplug, "serial unplug/replug under traffic"),
    Scenario("printer_disconnect", printer_disconnect, "printer disconnected mid-receipt"),
    Scenario("uplink_cut", uplink_cut, "uplink cut for 10 minutes, backlog drained"),
    Scenario("broker_restart", broker_restart, "broker restart mid-drain", {"per_register": 5000}),
    Scenario("clock_skew", clock_skew, "register clock skew (−3 h, +3 h, +25 h)"),
    Scenario("burst_8x100", burst, "burst of 100 transactions/s for 60 s across 8 registers", {"seconds": 60}),
    Scenario("offline_1m", offline_1m, "1,000,000 events queued offline, then drained"),
]

#: The short set (under 5 minutes on the simulated rig, debug build included): every kind
#: of fault with smaller counts, a 15 s burst, and not the million.
SHORT = [
    Scenario("power_cut_burst", power_cut_burst, "power cut during a burst (4 × 1,200 events at 200/s each)",
             {"per_register": 1200, "rate": 200}),
    Scenario("serial_unplug", serial_unplug, "serial unplug/replug under traffic"),
    Scenario("printer_disconnect", printer_disconnect, "printer disconnected mid-receipt"),
    Scenario("uplink_cut", uplink_cut, "uplink cut for 10 minutes, backlog drained"),
    Scenario("broker_restart", broker_restart, "broker restart mid-drain (6,000 queued)", {"per_register": 1500}),
    Scenario("clock_skew", clock_skew, "register clock skew (−3 h, +3 h, +25 h)"),
    Scenario("burst_8x100_15s", burst, "burst of 100 transactions/s for 15 s across 8 registers", {"seconds": 15}),
]


def select(name: str) -> list[Scenario]:
    if name == "all":
        return ALL
    if name == "short":
        return SHORT
    by = {s.name: s for s in SHORT + ALL} | {f"short.{s.name}": s for s in SHORT}
    out = []
    for n in name.split(","):
        if n not in by:
            raise SystemExit(f"unknown scenario {n!r}; known: all, short, {', '.join(by)}")
        out.append(by[n])
    return out
