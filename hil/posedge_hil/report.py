"""The Markdown report and the JUnit XML of a run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path


def _ms(v):
    return "–" if v is None else f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def table(results) -> str:
    head = ("| scenario | result | sent | acked | delivered (unique) | lost | duplicates (bound) | "
            "register→cloud p50 / p95 / p99 / max ms | ack p99 ms | peak RSS MiB | agent CPU s | wall s |")
    rows = [head, "|" + "---|" * 12]
    for r in results:
        v = r.verdict
        res = "planned" if r.planned else ("PASS" if r.ok else "**FAIL**")
        if v is None:
            rows.append(f"| {r.name} | {res} | | | | | | | | | | {r.wall_s:.0f} |")
            continue
        lat = v.latency_ms
        rows.append(
            f"| {r.name} | {res} | {v.sent} | {v.acked} | {v.delivered} ({v.unique}) | {v.lost} | "
            f"{v.duplicates} ({v.duplicate_bound}) | {_ms(lat.get('p50'))} / {_ms(lat.get('p95'))} / "
            f"{_ms(lat.get('p99'))} / {_ms(lat.get('max'))} | {_ms(v.ack_latency_ms.get('p99'))} | "
            f"{r.peak_rss_kib / 1024:.1f} | {r.cpu_s:.1f} | {r.wall_s:.0f} |"
        )
    return "\n".join(rows)


def write(dir: Path, rig, results, header: dict) -> tuple[Path, Path]:
    dir.mkdir(parents=True, exist_ok=True)
    md = [f"# posedge HIL report — {header['rig_name']}", ""]
    for k, v in header.items():
        md.append(f"- **{k}**: {v}")
    md += ["", table(results), ""]
    for r in results:
        md.append(f"## {r.name} — {r.title}")
        md.append("")
        md.append(("planned (dry run)" if r.planned else "PASS" if r.ok else "FAIL") + f", {r.wall_s:.1f} s")
        md.append("")
        for f in r.failures:
            md.append(f"- FAIL: {f}")
        for n in r.notes:
            md.append(f"- {n}")
        if r.verdict is not None:
            v = r.verdict
            md.append(f"- nacked: {v.nacked}; delivered though unacked: {v.unacked_delivered}; "
                      f"seq gaps: {v.seq_gaps}; keys with two event_ids: {v.conflicting_ids}; "
                      f"faults injected: {r.faults}")
        if r.extra:
            md.append("- " + "; ".join(f"{k}: {json.dumps(val)}" for k, val in r.extra.items()))
        md.append("")
    mdp = dir / "report.md"
    mdp.write_text("\n".join(md))

    suite = ET.Element("testsuite", name=f"posedge-hil.{header['rig_name']}", tests=str(len(results)),
                       failures=str(sum(1 for r in results if not r.ok)),
                       time=f"{sum(r.wall_s for r in results):.1f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"hil.{header['rig_name']}", name=r.name,
                             time=f"{r.wall_s:.1f}")
        if r.planned:
            ET.SubElement(case, "skipped", message="dry run: planned, not run")
        elif not r.ok:
            f = ET.SubElement(case, "failure", message="; ".join(r.failures)[:2000])
            f.text = "\n".join(r.failures)
        out = ET.SubElement(case, "system-out")
        verdict = asdict(r.verdict) if r.verdict else None
        if verdict:
            verdict["lost_keys"] = verdict["lost_keys"][:100]  # the count is in `lost`
        out.text = json.dumps({"verdict": verdict, "extra": r.extra, "notes": r.notes}, default=str)
    xp = dir / "junit.xml"
    root = ET.Element("testsuites", name="posedge-hil")
    root.append(suite)
    ET.ElementTree(root).write(xp, encoding="utf-8", xml_declaration=True)
    return mdp, xp
