//! The writer and the uplink's queue reads over a real store: a derived message lives
//! in its event's row, on its own lane, and the row leaves on the PUBACKs of both.

use super::*;
use crate::event::{Fields, IdempotencyKey, Part, RegisterId, RowId, raw_str};
use rusqlite::Connection;

/// A transaction with its derived message, as ingest builds them.
fn sale(key: &str) -> PendingEvent {
    let source = SourceName::new("lan");
    let event = |key: &str, source: SourceName, event_type: &str| {
        let mut body = Fields::new();
        body.insert("idempotency_key".into(), raw_str(key));
        body.insert("event_type".into(), raw_str(event_type));
        PendingEvent {
            body,
            idempotency_key: IdempotencyKey::new(key),
            register_id: RegisterId::new("r1"),
            event_type: event_type.into(),
            source,
            integrity_flagged: false,
            derived: None,
            business_day: None,
            day_figures: None,
        }
    };
    let derived = event(
        &format!("{key}|inventory"),
        crate::ingest::derived_lane(&source),
        crate::ingest::DERIVED_EVENT_TYPE,
    );
    PendingEvent {
        derived: Some(Box::new(derived)),
        ..event(key, source, "transaction")
    }
}

async fn store(outbox: &Outbox, event: PendingEvent) -> Stored {
    let pending = outbox.submit(event, 0, true).await.unwrap();
    pending.await.unwrap().unwrap()
}

/// Waits for the writer to have handled every control sent before: a resync's answer
/// comes after the commit of its batch.
async fn barrier(outbox: &Outbox, lane: &str, from: u64, to: u64) -> resync::Done {
    let request = resync::Request {
        id: "t".into(),
        source: lane.into(),
        from_seq: from,
        to_seq: to,
    };
    outbox.resync(request).await.unwrap().unwrap()
}

fn parts(conn: &Connection) -> Vec<(i64, i64)> {
    conn.prepare("SELECT id, parts FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn message(row: i64, part: Part) -> MessageRef {
    MessageRef {
        row: RowId(row),
        part,
    }
}

#[tokio::test]
async fn a_derived_message_shares_its_events_row_and_fate() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = OutboxConfig {
        path: dir.path().join("o.db"),
        ..OutboxConfig::default()
    };
    let (outbox, _writer) = Outbox::open(&cfg).unwrap();
    let a = store(&outbox, sale("a")).await;
    // A re-sent record stores neither message again, nor takes a derived seq.
    assert!(store(&outbox, sale("a")).await.duplicate);
    let b = store(&outbox, sale("b")).await;
    assert_eq!((a.seq.get(), b.seq.get()), (1, 2));

    let conn = schema::open_reader(&cfg.path).unwrap();
    let rows: Vec<(String, i64, Option<i64>)> = conn
        .prepare("SELECT source, seq, derived_seq FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![("lan".into(), 1, Some(1)), ("lan".into(), 2, Some(2))]
    );
    let queued = queue::queued_after(&conn, RowId(0), 10).unwrap();
    let sent: Vec<(MessageRef, &str)> = queued
        .iter()
        .map(|q| (q.message, q.event_type.as_str()))
        .collect();
    let (ra, rb) = (queued[0].message.row.0, queued[2].message.row.0);
    assert_eq!(
        sent,
        vec![
            (message(ra, Part::Event), "transaction"),
            (message(ra, Part::Derived), "inventory"),
            (message(rb, Part::Event), "transaction"),
            (message(rb, Part::Derived), "inventory"),
        ]
    );
    let derived: serde_json::Value = serde_json::from_slice(&queued[3].payload).unwrap();
    assert_eq!(derived["seq"], 2);
    assert_eq!(derived["idempotency_key"], "b|inventory");
    assert_ne!(
        derived["event_id"],
        serde_json::from_slice::<serde_json::Value>(&queued[2].payload).unwrap()["event_id"]
    );

    // One PUBACK of two: the row stays, waiting for the other message only.
    outbox.delivered(vec![message(ra, Part::Event)]);
    barrier(&outbox, "none", 1, 1).await;
    assert_eq!(parts(&conn), vec![(ra, 2), (rb, 3)]);
    let left: Vec<MessageRef> = queue::queued_after(&conn, RowId(0), 10)
        .unwrap()
        .iter()
        .map(|q| q.message)
        .collect();
    assert_eq!(left[0], message(ra, Part::Derived));
    outbox.delivered(vec![
        message(ra, Part::Derived),
        message(rb, Part::Derived),
        message(rb, Part::Event),
    ]);
    barrier(&outbox, "none", 1, 1).await;
    assert_eq!(parts(&conn), vec![]);

    // The cloud asks for the derived lane again: the rows come back with that part only.
    let done = barrier(&outbox, "lan.inventory", 1, 3).await;
    assert_eq!(
        done.messages,
        vec![message(ra, Part::Derived), message(rb, Part::Derived)]
    );
    assert_eq!(done.missing, vec![(3, 3)]);
    assert_eq!(parts(&conn), vec![(ra, 2), (rb, 2)]);
    // And then for an event of the same row: it joins the waiting row.
    let done = barrier(&outbox, "lan", 2, 2).await;
    assert_eq!((done.requeued(), done.bytes), (1, 0));
    assert_eq!(parts(&conn), vec![(ra, 2), (rb, 3)]);
    let again = barrier(&outbox, "lan.inventory", 1, 2).await;
    assert_eq!((again.requeued(), again.already_queued), (0, 2));
}
