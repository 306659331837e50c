"""The verdict of a scenario: the registers' ledgers against what reached the cloud.

Pure functions over plain data, so the unit tests (hil/test_runner.py) can feed them
hand-made ledgers and deliveries, including ones that must fail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Delivery:
    """One message a cloud subscriber received (one `posedge.event/1`)."""

    key: str
    event_id: str
    arrival_ms: float
    source: str = ""
    seq: int | None = None
    event_type: str = ""
    register_id: str = ""
    occurred_at: str = ""
    received_at: str = ""
    raw_sha256: str = ""


def parse_delivery(payload: bytes, arrival_ms: float) -> Delivery | None:
    """A delivery from an event payload; None for anything that is not an event."""
    try:
        ev = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(ev, dict) or ev.get("schema") != "posedge.event/1":
        return None
    src = ev.get("source") or {}
    seq = ev.get("seq")
    return Delivery(
        key=str(ev.get("idempotency_key", "")),
        event_id=str(ev.get("event_id", "")),
        arrival_ms=arrival_ms,
        source=str(src.get("name", "")),
        seq=seq if isinstance(seq, int) else None,
        event_type=str(ev.get("event_type", "")),
        register_id=str(ev.get("register_id", "")),
        occurred_at=str(ev.get("occurred_at") or ""),
        received_at=str(ev.get("received_at") or ""),
        raw_sha256=str(src.get("raw_sha256") or ""),
    )


def read_ledger(path: Path) -> list[dict]:
    """The lines of a `posedge sim --ledger` file (a torn last line is ignored)."""
    out = []
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def percentiles(values: list[float], ps=(50, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles plus max; None when there are no values."""
    if not values:
        return {f"p{p}": None for p in ps} | {"max": None}
    s = sorted(values)
    out: dict[str, float | None] = {}
    for p in ps:
        rank = max(1, -(-p * len(s) // 100))  # ceil(p/100 * n)
        out[f"p{p}"] = s[min(len(s), rank) - 1]
    out["max"] = s[-1]
    return out


@dataclass
class Verdict:
    """What a comparison found; `failures` empty means the scenario passed."""

    sent: int = 0
    acked: int = 0
    nacked: int = 0
    delivered: int = 0
    unique: int = 0
    lost: int = 0
    lost_keys: list[str] = field(default_factory=list)
    duplicates: int = 0
    duplicate_bound: int = 0
    conflicting_ids: int = 0
    seq_gaps: int = 0
    unacked_delivered: int = 0
    unknown: int = 0
    latency_ms: dict = field(default_factory=dict)
    ack_latency_ms: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def compare(
    ledger: list[dict],
    deliveries: list[Delivery],
    duplicate_bound: int,
    check_seq: bool = True,
) -> Verdict:
    """Every acked key must have arrived; duplicates must stay within the bound; one key
    must never carry two event ids (a second stored copy); per-source `seq` must be gapless
    from 1 (a fresh outbox per scenario)."""
    v = Verdict(duplicate_bound=duplicate_bound)
    ledger_keys: dict[str, dict] = {}
    for e in ledger:
        k = e.get("idempotency_key")
        if not k:
            continue
        ledger_keys[k] = e
    v.sent = len(ledger_keys)
    acked = {k: e for k, e in ledger_keys.items() if e.get("acked") is True}
    v.acked = len(acked)
    v.nacked = v.sent - v.acked
    by_key: dict[str, list[Delivery]] = {}
    for d in deliveries:
        by_key.setdefault(d.key, []).append(d)
    v.delivered = len(deliveries)
    v.unique = len(by_key)
    v.lost_keys = sorted(k for k in acked if k not in by_key)
    v.lost = len(v.lost_keys)
    v.duplicates = v.delivered - v.unique
    v.conflicting_ids = sum(1 for ds in by_key.values() if len({d.event_id for d in ds}) > 1)
    v.unacked_delivered = sum(1 for k in ledger_keys if k not in acked and k in by_key)
    v.unknown = sum(1 for k in by_key if k not in ledger_keys)
    if check_seq:
        per_source: dict[str, set[int]] = {}
        for d in deliveries:
            if d.seq is not None and d.source:
                per_source.setdefault(d.source, set()).add(d.seq)
        for seqs in per_source.values():
            v.seq_gaps += max(seqs) - len(seqs) if seqs else 0
    lat = []
    ack_lat = []
    for k, e in acked.items():
        sent = e.get("sent_ms")
        ds = by_key.get(k)
        if isinstance(sent, (int, float)) and ds:
            lat.append(min(d.arrival_ms for d in ds) - sent)
        ans = e.get("answered_ms")
        if isinstance(sent, (int, float)) and isinstance(ans, (int, float)):
            ack_lat.append(ans - sent)
    v.latency_ms = percentiles(lat)
    v.ack_latency_ms = percentiles(ack_lat)
    if v.acked == 0:
        v.failures.append("no event was acked: the registers never got through")
    if v.lost:
        v.failures.append(f"{v.lost} acked event(s) never reached the cloud, e.g. {v.lost_keys[:3]}")
    if v.duplicates > duplicate_bound:
        v.failures.append(f"{v.duplicates} duplicate deliveries exceed the bound {duplicate_bound}")
    if v.conflicting_ids:
        v.failures.append(f"{v.conflicting_ids} key(s) arrived with two different event_ids (stored twice)")
    if v.seq_gaps:
        v.failures.append(f"{v.seq_gaps} seq number(s) missing at the cloud (gaps per source)")
    if v.unknown:
        v.failures.append(f"{v.unknown} delivered key(s) no register sent")
    return v


# --- the printer tap ---------------------------------------------------------------

CUT = b"\x1dVB\x00"  # GS V 66 0: the simulator's paper cut (src/decode/escpos/render.rs)

_DIGIT_RUN = re.compile(rb"\d[\d -]{11,}\d")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def may_hold_card_data(receipt: bytes) -> bool:
    """True when the agent's redactor may have rewritten this receipt (a Luhn-valid run of
    13-19 digits, or track data), so its hash after redaction is not the hash of the raw
    bytes and a byte-exact comparison through the hash is not possible."""
    if b"%B" in receipt or b"=" in receipt and b";" in receipt:
        return True
    for m in _DIGIT_RUN.finditer(receipt):
        digits = re.sub(rb"[ -]", b"", m.group()).decode()
        for n in range(13, 20):
            for i in range(0, len(digits) - n + 1):
                if luhn(digits[i : i + n]):
                    return True
    return False


def split_receipts(stream: bytes) -> tuple[list[bytes], bytes]:
    """Complete receipts (each ending with its cut) and the torn rest."""
    out = []
    while True:
        i = stream.find(CUT)
        if i < 0:
            return out, stream
        out.append(stream[: i + len(CUT)])
        stream = stream[i + len(CUT) :]


@dataclass
class PrinterVerdict:
    printed: int = 0
    torn: int = 0
    compared: int = 0
    relay_mismatch: int = 0
    not_captured: int = 0
    captured_not_printed: int = 0
    unknown: int = 0
    failures: list[str] = field(default_factory=list)


def compare_printer(
    runs: list[tuple[list[dict], bytes]],
    cloud_sha: list[str],
    extra_bound: int,
) -> PrinterVerdict:
    """`runs`: per printer connection, the ledger of the register's print run that fed it
    and the bytes the printer received. Every receipt the printer received whole must be
    at the cloud (by the hash of its redacted bytes, as the ledger records it); receipts
    without card data must have reached the printer byte for byte; receipts at the cloud
    that the register sent but the printer never got whole (it was dark) are counted; receipts
    at the cloud that match nothing the register sent (a torn copy) stay within `extra_bound`."""
    import hashlib

    v = PrinterVerdict()
    cloud = {}
    for s in cloud_sha:
        cloud[s] = cloud.get(s, 0) + 1
    expected = set()
    for ledger, stream in runs:
        receipts, rest = split_receipts(stream)
        v.printed += len(receipts)
        v.torn += 1 if rest else 0
        for i, r in enumerate(receipts):
            if i >= len(ledger):
                v.relay_mismatch += 1
                continue
            sha = ledger[i].get("receipt_sha256", "")
            expected.add(sha)
            if not may_hold_card_data(r):
                v.compared += 1
                if hashlib.sha256(r).hexdigest() != sha:
                    v.relay_mismatch += 1
            if sha not in cloud:
                v.not_captured += 1
    sent = {e.get("receipt_sha256") for ledger, _ in runs for e in ledger}
    v.captured_not_printed = sum(n for s, n in cloud.items() if s not in expected and s in sent)
    v.unknown = sum(n for s, n in cloud.items() if s not in sent)
    if v.printed == 0:
        v.failures.append("the printer received no complete receipt")
    if v.relay_mismatch:
        v.failures.append(f"{v.relay_mismatch} receipt(s) reached the printer altered")
    if v.not_captured:
        v.failures.append(f"{v.not_captured} printed receipt(s) never reached the cloud")
    if v.unknown > extra_bound:
        v.failures.append(
            f"{v.unknown} receipt(s) at the cloud match nothing the register printed (bound {extra_bound}: "
            "one torn receipt per disconnect)"
        )
    return v
