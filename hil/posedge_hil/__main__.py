"""hil/run --rig FILE --scenario NAME|all|short [--report DIR] [--dry-run] [--posedge-bin PATH]

Exit status: 0 when every scenario passed (or, with --dry-run, was planned), 1 when any
failed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import procs, report
from .rig import REPO, open_rig
from .scenarios import Ctx, Result, select


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="hil/run", description="posedge hardware-in-the-loop runner")
    ap.add_argument("--rig", required=True, type=Path, help="rig file (hil/rigs/*.yaml)")
    ap.add_argument("--scenario", default="short", help="a name, a comma list, `short` or `all`")
    ap.add_argument("--report", type=Path, help="where report.md and junit.xml go (default: hil-report-<time>)")
    ap.add_argument("--posedge-bin", default=os.environ.get("POSEDGE_BIN"),
                    help="the host posedge binary (agent on the sim rig, simulated registers on every rig); "
                         "default $POSEDGE_BIN")
    ap.add_argument("--dry-run", action="store_true", help="print every command a run would do; run nothing")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    a = ap.parse_args(argv)

    if a.list:
        from .scenarios import ALL, SHORT
        for s in ALL:
            print(f"{s.name:20} {s.title}")
        print("short =", ", ".join(s.name for s in SHORT))
        return 0
    scenarios = select(a.scenario)
    if a.posedge_bin is None and not a.dry_run:
        for cand in ("target/release/posedge", "target/debug/posedge"):
            if (REPO / cand).exists():
                a.posedge_bin = str(REPO / cand)
                break
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    rdir = (a.report or Path(f"hil-report-{stamp}")).resolve()
    rdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="posedge-hil-", dir=os.environ.get("POSEDGE_HIL_TMP")))
    transcript = open(rdir / "transcript.log", "a")

    def log(msg: str):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        transcript.write(line + "\n")
        transcript.flush()

    procs.install_signal_handlers()
    rig = open_rig(a.rig, work, a.posedge_bin, a.dry_run, log)
    log(f"rig {a.rig} ({rig.kind}), scenarios: {', '.join(s.name for s in scenarios)}, report {rdir}")
    if a.dry_run:
        log("DRY RUN: commands are printed, nothing is run")
    t0 = time.time()
    results: list[Result] = []
    procs.on_exit(lambda: rig.teardown() if not getattr(rig, "_torn", False) else None)
    try:
        rig.setup()
        for s in scenarios:
            log(f"=== {s.name}: {s.title}")
            ctx = Ctx(rig, s.name, s.title, work if a.dry_run else rdir / "scenarios", log)
            ctx.params = dict(s.params)
            try:
                res = s.fn(ctx)
            except Exception as e:  # noqa: BLE001 - a broken scenario is a failed one
                traceback.print_exc()
                res = ctx.result
                res.wall_s = time.time() - ctx.t0
                res.failures.append(f"scenario error: {type(e).__name__}: {e}")
                res.ok = False
                try:
                    rig.stop_agent()
                except Exception:  # noqa: BLE001
                    pass
            finally:
                ctx.cleanup()
            v = res.verdict
            log(f"--- {s.name}: {'planned' if res.planned else 'PASS' if res.ok else 'FAIL'} in {res.wall_s:.1f}s"
                + (f" (acked {v.acked}, lost {v.lost}, duplicates {v.duplicates}/{v.duplicate_bound})" if v else "")
                + "".join(f"\n    FAIL: {f}" for f in res.failures))
            results.append(res)
    finally:
        try:
            rig.teardown()
        finally:
            rig._torn = True
    header = {
        "rig_name": a.rig.stem,
        "rig file": str(a.rig),
        "rig kind": rig.kind,
        "time compression": f"{rig.compression:g}× (outages of store time run {rig.compression:g} times shorter)",
        "posedge binary": a.posedge_bin,
        "posedge version": _version(a.posedge_bin) if not a.dry_run else "(dry run)",
        "started": stamp,
        "wall time": f"{time.time() - t0:.1f} s",
        "scenarios": a.scenario,
    }
    md, xp = report.write(rdir, rig, results, header)
    log(f"report: {md}\njunit: {xp}\n\n" + report.table(results))
    failed = [r.name for r in results if not r.ok]
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    log(f"all {len(results)} scenario(s) {'planned' if a.dry_run else 'passed'} in {time.time() - t0:.1f} s")
    return 0


def _version(bin):
    try:
        return subprocess.run([bin, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
