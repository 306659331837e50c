//! `posedge status`: the snapshot as a table or JSON, read from the outbox database so it
//! works while the agent runs (WAL readers never block the writer) and after it stopped.

use crate::outbox::queue::Snapshot;
use std::fmt::Write;

/// Renders the snapshot for a terminal.
pub fn table(s: &Snapshot) -> String {
    let mut out = String::new();
    let agent = match (s.agent.running, s.agent.pid, s.agent.heartbeat_age_s) {
        (true, Some(pid), _) => format!("running (pid {pid})"),
        (_, _, Some(age)) => format!("NOT RUNNING (last heartbeat {age}s ago)"),
        _ => "never started".into(),
    };
    let _ = writeln!(out, "agent      {agent}");
    let link = if s.uplink.connected {
        "connected"
    } else {
        "DISCONNECTED"
    };
    let _ = writeln!(
        out,
        "uplink     {link}{}",
        s.uplink
            .detail
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "last ack   {}",
        s.uplink.last_puback_at.as_deref().unwrap_or("never")
    );
    let _ = writeln!(
        out,
        "outbox     {} pending, {} bytes, oldest {}",
        s.outbox.pending,
        s.outbox.bytes,
        s.outbox
            .oldest_age_s
            .map(|a| format!("{a}s"))
            .unwrap_or_else(|| "-".into())
    );
    let _ = writeln!(out, "dead       {} dead letters", s.outbox.dead_letters);
    let _ = writeln!(
        out,
        "\n{:<16} {:>10} {:>10} {:>8} {:>8} {:>9} {:>9} {:>10}",
        "source", "received", "acked", "nacked", "dead", "redacted", "integrity", "last seq"
    );
    for c in &s.sources {
        let _ = writeln!(
            out,
            "{:<16} {:>10} {:>10} {:>8} {:>8} {:>9} {:>9} {:>10}",
            c.name,
            c.received,
            c.acked,
            c.nacked,
            c.dead_letters,
            c.redacted,
            c.integrity_flags,
            c.last_seq
        );
    }
    if s.alarms.is_empty() {
        let _ = writeln!(out, "\nalarms     none");
    } else {
        let _ = writeln!(out, "\nALARMS");
        for a in &s.alarms {
            let _ = writeln!(
                out,
                "  {}: {} (since {})",
                a.name,
                a.message,
                crate::clock::rfc3339_from_ms(a.since_ms)
            );
        }
    }
    out
}

/// Renders the queue per register.
pub fn queue_table(rows: &[crate::outbox::queue::QueuedByRegister]) -> String {
    let mut out = format!(
        "{:<16} {:>10} {:>12}  {}\n",
        "register", "pending", "bytes", "oldest"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<16} {:>10} {:>12}  {}",
            r.register_id, r.pending, r.bytes, r.oldest_at
        );
    }
    if rows.is_empty() {
        out.push_str("(nothing waiting for the uplink)\n");
    }
    out
}

/// Renders dead letters, newest first.
pub fn dead_letter_table(rows: &[crate::outbox::queue::DeadLetterRow]) -> String {
    let mut out = String::new();
    for d in rows {
        let _ = writeln!(
            out,
            "#{} {} source={} register={} bytes={}\n    reason: {}\n    raw:    {}",
            d.id,
            d.at,
            d.source,
            d.register_id.as_deref().unwrap_or("-"),
            d.raw_bytes,
            d.reason,
            d.raw_preview.escape_debug()
        );
    }
    if rows.is_empty() {
        out.push_str("(no dead letters)\n");
    }
    out
}

/// `posedge queue audit` as text, one entry per line.
pub fn audit_table(rows: &[crate::ops::audit::Stored]) -> String {
    let mut out = String::new();
    for a in rows {
        let _ = writeln!(
            out,
            "#{} {} {} {} {}{}: {}",
            a.id,
            a.at,
            a.actor,
            a.action,
            a.outcome,
            if a.published {
                ""
            } else {
                " (not yet published)"
            },
            a.detail.escape_debug()
        );
    }
    if rows.is_empty() {
        out.push_str("(no audit entries)\n");
    }
    out
}
