//! When a business day closes, and the task that summarises it from the stored events.
//!
//! A day is summarised when a register sends a till or shift close for it, and again
//! when the store's cut-off passes; it is summarised again (a higher revision) whenever
//! events of the day arrive later (a register that was offline). Everything is read back
//! from the outbox database, so restarts and outages change nothing: the summary is the
//! records.

use super::summary::{Closed, DaySummary, SCHEMA, StoredEvent, SummaryMessage};
use crate::outbox::{Outbox, StoredSummary};
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rusqlite::{Connection, OptionalExtension, named_params};
use std::collections::BTreeMap;
use std::time::Duration;

/// How often the task looks for closed days and late events.
const TICK: Duration = Duration::from_secs(2);

/// What both reads of stored rows select first, for [`add_row`]. Rows add their stored
/// day figures; the payload is read only for rows stored before those existed. Derived
/// lanes add only their `seq` span: their payloads hold no day figures, and reading
/// them cost a parse per inventory message. A row's own derived message (schema v7) adds
/// its `derived_seq` to the derived lane's span.
const ROW_COLUMNS: &str = "id, source, seq, register_id, day_figures,
    CASE WHEN day_figures IS NOT NULL OR source LIKE '%' || :derived THEN NULL ELSE payload END,
    derived_seq";

/// Adds one row selected with [`ROW_COLUMNS`] to `summary`. A row whose figures are of
/// another version comes back as (id, source, seq): its payload is read on its own.
fn add_row(
    summary: &mut DaySummary,
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Option<(i64, String, u64)>> {
    let id: i64 = r.get(0)?;
    let seq = u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
    if let Some(derived) = r.get::<_, Option<i64>>(6)? {
        let lane =
            crate::ingest::derived_lane(&crate::event::SourceName::new(r.get_ref(1)?.as_str()?));
        summary.add_span(lane.as_str(), u64::try_from(derived).unwrap_or(0));
    }
    let row = StoredEvent {
        source: r.get_ref(1)?.as_str()?,
        seq,
        register: r.get_ref(3)?.as_str()?,
        figures: r.get_ref(4)?.as_blob_or_null()?,
    };
    if summary.add_figures(&row) {
        return Ok(None);
    }
    match r.get_ref(5)?.as_blob_or_null()? {
        Some(payload) => summary.add(row.source, seq, payload),
        None if row.figures.is_none() => summary.add(row.source, seq, b""),
        None => return Ok(Some((id, row.source.to_string(), seq))),
    }
    Ok(None)
}

/// The store's business-day calendar: its time zone and cut-off.
#[derive(Debug, Clone)]
pub struct Calendar {
    zone: TimeZone,
    cutoff: Time,
}

impl Calendar {
    /// A calendar; a cut-off before noon closes the previous day.
    pub fn new(zone: TimeZone, cutoff: Time) -> Calendar {
        Calendar { zone, cutoff }
    }

    fn closes_next_morning(&self) -> bool {
        self.cutoff.hour() < 12
    }

    /// The instant the cut-off closes `day`.
    pub fn closes_at(&self, day: Date) -> Option<Timestamp> {
        let date = if self.closes_next_morning() {
            day.checked_add(1.day()).ok()?
        } else {
            day
        };
        // A cut-off inside a DST gap resolves to the later instant (jiff's compatible rule).
        date.to_datetime(self.cutoff)
            .to_zoned(self.zone.clone())
            .ok()
            .map(|z| z.timestamp())
    }

    /// The business day an instant belongs to.
    pub fn day_of(&self, at: Timestamp) -> Date {
        let local = at.to_zoned(self.zone.clone());
        let (date, time) = (local.date(), local.time());
        let shifted = if self.closes_next_morning() {
            (time < self.cutoff)
                .then(|| date.yesterday().ok())
                .flatten()
        } else {
            (time >= self.cutoff)
                .then(|| date.tomorrow().ok())
                .flatten()
        };
        shifted.unwrap_or(date)
    }

    /// `[start, end)` in Unix milliseconds of the day's trading window.
    fn window_ms(&self, day: Date) -> Option<(i64, i64)> {
        let end = self.closes_at(day)?;
        let start = self.closes_at(day.yesterday().ok()?)?;
        Some((start.as_millisecond(), end.as_millisecond()))
    }
}

/// Who the summaries are for.
#[derive(Debug, Clone)]
pub struct Store {
    /// Tenant.
    pub tenant_id: String,
    /// Store.
    pub store_id: String,
    /// IANA name of the time zone, as configured.
    pub time_zone: String,
    /// How long the archive keeps delivered events: a day older than this is never
    /// summarised again (its records may be gone; the last revision stands).
    pub revise_for: Duration,
}

/// What the task knows of one day between ticks.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// Highest `events.id` of the day.
    max_id: i64,
    /// A till or shift event arrived (it may close a register).
    close_event: bool,
}

/// The summary already stored for a day.
struct Previous {
    revision: u64,
    closed: bool,
    through_id: i64,
}

/// Scans new rows, finds the days due, and summarises them.
struct Summariser {
    conn: Connection,
    calendar: Calendar,
    store: Store,
    scanned: i64,
    days: BTreeMap<Date, Seen>,
    /// Each day's figures as last computed, with the highest `events.id` they include.
    /// Adding an event is order-independent (counts, sums, first/last `seq`), so a later
    /// revision adds only the rows stored since: re-reading the whole day on every tick
    /// cost a parse of every event of the day per late event, quadratic in the day.
    sums: BTreeMap<Date, (DaySummary, i64)>,
}

impl Summariser {
    /// Notes the days of rows stored since the last scan, and adds each row to its
    /// day's figures when the day has been computed since the start (the next compute
    /// then reads only what arrived after the scan, not every new row a second time).
    fn scan(&mut self) -> rusqlite::Result<()> {
        let sql = format!(
            "SELECT {ROW_COLUMNS}, business_day, received_at_ms, event_type IN ('till', 'shift')
             FROM events WHERE id > :after ORDER BY id LIMIT 100000"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(named_params! {
            ":after": self.scanned,
            ":derived": crate::ingest::DERIVED_LANE_SUFFIX,
        })?;
        let mut unreadable = Vec::new();
        let mut windows_disagree = false;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            self.scanned = id;
            let named = r.get_ref(7)?.as_str_or_null()?;
            let received_ms: i64 = r.get(8)?;
            // Whether the compute would count the row for `day`: by its business day
            // as stored, or, without one, by the day's window.
            let (day, counted) = match named.map(|d| (d, d.parse::<Date>())) {
                Some((text, Ok(day))) => (day, day.to_string() == text),
                _ => match Timestamp::from_millisecond(received_ms) {
                    Ok(t) => {
                        let day = self.calendar.day_of(t);
                        let in_window = self
                            .calendar
                            .window_ms(day)
                            .is_some_and(|(start, end)| (start..end).contains(&received_ms));
                        // A row the two place on different days must not be counted here.
                        windows_disagree |= named.is_none() && !in_window;
                        (day, named.is_none() && in_window)
                    }
                    Err(_) => continue,
                },
            };
            let seen = self.days.entry(day).or_default();
            seen.max_id = seen.max_id.max(id);
            seen.close_event |= r.get::<_, bool>(9)?;
            if counted
                && let Some((summary, through)) = self.sums.get_mut(&day)
                && id > *through
            {
                *through = id;
                if let Some(row) = add_row(summary, r)? {
                    unreadable.push((day, row));
                }
            }
        }
        drop(rows);
        drop(stmt);
        if windows_disagree {
            // Read every computed day anew rather than risk a row counted twice.
            self.sums.clear();
            return Ok(());
        }
        for (day, (id, source, seq)) in unreadable {
            let payload = self.payload(id)?;
            if let Some((summary, _)) = self.sums.get_mut(&day) {
                summary.add(&source, seq, &payload);
            }
        }
        Ok(())
    }

    /// One row's payload.
    fn payload(&self, id: i64) -> rusqlite::Result<Vec<u8>> {
        self.conn
            .prepare_cached("SELECT payload FROM events WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
    }

    fn previous(&self, day: Date) -> rusqlite::Result<Option<Previous>> {
        self.conn
            .prepare_cached(
                "SELECT revision, closed IS NOT NULL, through_id FROM summaries WHERE business_day = ?1",
            )?
            .query_row([day.to_string()], |r| {
                Ok(Previous {
                    revision: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    closed: r.get(1)?,
                    through_id: r.get(2)?,
                })
            })
            .optional()
    }

    /// The days to summarise now.
    fn due(&self, now: Timestamp) -> rusqlite::Result<Vec<(Date, Option<Previous>)>> {
        let mut out = Vec::new();
        let horizon = jiff::SignedDuration::try_from(self.store.revise_for).unwrap_or_default();
        for (day, seen) in &self.days {
            let closes = self.calendar.closes_at(*day);
            if closes.is_some_and(|t| now.duration_since(t) > horizon) {
                continue;
            }
            let past_cutoff = closes.is_some_and(|t| now >= t);
            let prev = self.previous(*day)?;
            let due = match &prev {
                Some(p) => seen.max_id > p.through_id || (past_cutoff && !p.closed),
                None => seen.close_event || past_cutoff,
            };
            if due {
                out.push((*day, prev));
            }
        }
        Ok(out)
    }

    /// Adds up one day from the stored events: the rows stored since the day was last
    /// computed (all of them after a start).
    fn compute(&mut self, day: Date) -> rusqlite::Result<(DaySummary, i64)> {
        let (start, end) = self.calendar.window_ms(day).unwrap_or((0, 0));
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM events WHERE business_day = :day AND id > :after
             UNION ALL
             SELECT {ROW_COLUMNS} FROM events
               WHERE business_day IS NULL AND received_at_ms >= :start AND received_at_ms < :end
               AND id > :after"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let (mut summary, mut through) = self.sums.remove(&day).unwrap_or_default();
        let mut unreadable = Vec::new();
        let mut rows = stmt.query(named_params! {
            ":day": day.to_string(),
            ":start": start,
            ":end": end,
            ":after": through,
            ":derived": crate::ingest::DERIVED_LANE_SUFFIX,
        })?;
        while let Some(r) = rows.next()? {
            through = through.max(r.get(0)?);
            unreadable.extend(add_row(&mut summary, r)?);
        }
        drop(rows);
        drop(stmt);
        for (id, source, seq) in unreadable {
            let payload = self.payload(id)?;
            summary.add(&source, seq, &payload);
        }
        self.sums.insert(day, (summary.clone(), through));
        Ok((summary, through))
    }

    /// One pass: the summaries to store.
    fn pass(&mut self, now: Timestamp) -> rusqlite::Result<Vec<StoredSummary>> {
        self.scan()?;
        let mut out = Vec::new();
        for (day, prev) in self.due(now)? {
            let (figures, through_id) = self.compute(day)?;
            let past_cutoff = self.calendar.closes_at(day).is_some_and(|t| now >= t);
            let closed = if figures.all_closed() {
                Some(Closed::Registers)
            } else if past_cutoff {
                Some(Closed::Cutoff)
            } else {
                None
            };
            let revision = prev.map_or(1, |p| p.revision + 1);
            let message = SummaryMessage {
                schema: SCHEMA.into(),
                tenant_id: self.store.tenant_id.clone(),
                store_id: self.store.store_id.clone(),
                business_day: day.to_string(),
                time_zone: self.store.time_zone.clone(),
                revision,
                closed,
                computed_at: now.to_string(),
                day: figures,
            };
            let payload = serde_json::to_vec(&message).unwrap_or_default();
            // Later passes compare with what is stored; until the writer has stored it,
            // the day's high-water mark keeps it from being computed twice.
            if let Some(seen) = self.days.get_mut(&day) {
                seen.close_event = false;
            }
            out.push(StoredSummary {
                business_day: day.to_string(),
                revision,
                closed: closed.map(|c| {
                    serde_json::to_value(c)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                }),
                payload,
                through_id,
            });
        }
        Ok(out)
    }
}

/// Summarises business days for as long as the agent runs.
pub async fn run(outbox: Outbox, calendar: Calendar, store: Store) {
    let conn = match crate::outbox::schema::open_reader(outbox.path()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "end-of-day summaries are off: cannot read the outbox");
            return;
        }
    };
    let mut s = Summariser {
        conn,
        calendar,
        store,
        scanned: 0,
        days: BTreeMap::new(),
        sums: BTreeMap::new(),
    };
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let joined = tokio::task::spawn_blocking(move || {
            let r = s.pass(Timestamp::now());
            (s, r)
        })
        .await;
        let result = match joined {
            Ok((back, result)) => {
                s = back;
                result
            }
            Err(e) => {
                tracing::error!(error = %e, "end-of-day summaries stopped");
                return;
            }
        };
        match result {
            Ok(done) => {
                for summary in done {
                    tracing::info!(business_day = %summary.business_day, revision = summary.revision,
                        closed = ?summary.closed, "end-of-day summary computed");
                    outbox.summary(summary);
                }
                // The writer stores them before the next tick reads `summaries` again.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => tracing::warn!(error = %e, "end-of-day summary pass failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar(zone: &str, cutoff: &str) -> Calendar {
        let (h, m) = cutoff.split_once(':').unwrap();
        Calendar::new(
            TimeZone::get(zone).unwrap(),
            Time::new(h.parse().unwrap(), m.parse().unwrap(), 0, 0).unwrap(),
        )
    }

    /// Rows stored before the day figures existed, or with figures of another version,
    /// add up from their payloads; the total is the same as reading every payload.
    #[test]
    fn rows_without_readable_figures_are_read_from_their_payload() {
        use crate::derive::summary::DayFigures;
        use crate::event::Fields;
        let (dir, writer, lines) = edge_case_store();
        let path = dir.path().join("o.db");
        let mut expected = DaySummary::default();
        let mut rows: Vec<(&str, Fields)> = lines
            .lines()
            .map(|l| ("lane", serde_json::from_str(l).unwrap()))
            .collect();
        let close = r#"{"event_type":"till","register_id":"reg-edge","body":{"action":"close"}}"#;
        rows.push(("lane", serde_json::from_str(close).unwrap()));
        rows.push((
            "lane.inventory",
            serde_json::from_str(r#"{"register_id":"reg-edge"}"#).unwrap(),
        ));
        for (i, (source, mut fields)) in rows.into_iter().enumerate() {
            let derived = source.ends_with(crate::ingest::DERIVED_LANE_SUFFIX);
            if !derived {
                fields.insert(
                    "schema".into(),
                    crate::event::raw(&crate::event::SCHEMA.into()),
                );
            }
            let tx = fields
                .get("body")
                .and_then(|b| serde_json::from_str(b.get()).ok());
            let figures = DayFigures::of_members(&fields, tx.as_ref());
            let mut figures = figures.as_bytes().to_vec();
            match i {
                0 => figures.clear(),   // stored before the column existed
                1 => figures[0] = 0xff, // another version
                _ => {}
            }
            let payload = serde_json::to_vec(&fields).unwrap();
            expected.add(source, i as u64 + 1, if derived { b"" } else { &payload });
            // The rows stored since v7 carry their own derived message's seq; the first
            // two stand for rows of an older store (without one) in every other way too.
            let derived_seq = (i >= 2 && !derived).then_some(10 + i as i64);
            if let Some(seq) = derived_seq {
                expected.add_span("lane.inventory", seq as u64);
            }
            writer
                .execute(
                    "INSERT INTO events (event_id, idempotency_key, source, seq, register_id, event_type,
                        payload, received_at_ms, business_day, day_figures, derived_seq, derived)
                     VALUES (?1, ?1, ?2, ?3, 'reg-edge', 'transaction', ?4, 0, '2026-11-27', ?5, ?6,
                        CASE WHEN ?6 IS NULL THEN NULL ELSE x'7b7d' END)",
                    rusqlite::params![
                        format!("k{i}"),
                        source,
                        i as i64 + 1,
                        payload,
                        (!figures.is_empty() && !derived).then_some(figures),
                        derived_seq
                    ],
                )
                .unwrap();
        }
        let mut s = summariser(&path);
        let (summary, through) = s.compute("2026-11-27".parse().unwrap()).unwrap();
        assert_eq!(through, 4);
        assert_eq!(summary, expected);
        assert_eq!((summary.store.transactions, summary.store.returns), (2, 1));
        assert!(summary.all_closed());
        let lane = &summary.sources["lane.inventory"];
        let rows = lines.lines().count() + 1;
        assert_eq!(lane.events, 1 + rows as u64 - 2, "{lane:?}");
        assert_eq!(lane.last_seq, 10 + rows as u64 - 1);
    }

    /// An empty store (`o.db` in the directory), its writer, and the partial-refund edge
    /// case's NDJSON lines.
    fn edge_case_store() -> (tempfile::TempDir, Connection, String) {
        let dir = tempfile::tempdir().unwrap();
        let writer = crate::outbox::schema::open_writer(&dir.path().join("o.db")).unwrap();
        let lines = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/edge_cases/partial_refund.ndjson"),
        )
        .unwrap();
        (dir, writer, lines)
    }

    fn summariser(path: &std::path::Path) -> Summariser {
        Summariser {
            conn: crate::outbox::schema::open_reader(path).unwrap(),
            calendar: calendar("Europe/Berlin", "04:00"),
            store: Store {
                tenant_id: "t".into(),
                store_id: "s".into(),
                time_zone: "Europe/Berlin".into(),
                revise_for: Duration::from_secs(86_400 * 3650),
            },
            scanned: 0,
            days: BTreeMap::new(),
            sums: BTreeMap::new(),
        }
    }

    /// Rows the scan adds to a computed day, and those it must leave to the compute,
    /// come to the same figures as one compute over every row.
    #[test]
    fn figures_added_while_scanning_equal_a_compute_from_scratch() {
        use crate::derive::summary::DayFigures;
        use crate::event::Fields;
        let (dir, writer, lines) = edge_case_store();
        let path = dir.path().join("o.db");
        let day: Date = "2026-11-27".parse().unwrap();
        // 2026-11-27 12:00 in Berlin, inside the day's window; and the next day's.
        let noon = 1_795_777_200_000_i64;
        let next_day = noon + 86_400_000;
        let mut n = 0;
        let mut insert =
            |source: &str, business_day: Option<&str>, received: i64, figures_ok: bool| {
                for line in lines.lines() {
                    n += 1;
                    let mut fields: Fields = serde_json::from_str(line).unwrap();
                    fields.insert(
                        "schema".into(),
                        crate::event::raw(&crate::event::SCHEMA.into()),
                    );
                    fields.insert("register_id".into(), crate::event::raw(&"reg-edge".into()));
                    let tx = fields
                        .get("body")
                        .and_then(|b| serde_json::from_str(b.get()).ok());
                    let mut figures = DayFigures::of_members(&fields, tx.as_ref())
                        .as_bytes()
                        .to_vec();
                    if !figures_ok {
                        figures[0] = 0xff;
                    }
                    let derived = source.ends_with(crate::ingest::DERIVED_LANE_SUFFIX);
                    writer
                    .execute(
                        "INSERT INTO events (event_id, idempotency_key, source, seq, register_id,
                            event_type, payload, received_at_ms, business_day, day_figures)
                         VALUES (?1, ?1, ?2, ?3, 'reg-edge', 'transaction', ?4, ?5, ?6, ?7)",
                        rusqlite::params![
                            format!("k{n}"),
                            source,
                            n,
                            serde_json::to_vec(&fields).unwrap(),
                            received,
                            business_day,
                            (!derived).then_some(figures)
                        ],
                    )
                    .unwrap();
                }
            };
        insert("lane", Some("2026-11-27"), noon, true);
        let mut s = summariser(&path);
        s.scan().unwrap();
        s.compute(day).unwrap();
        // Late rows of every kind: dated, undated in the window and outside it, a date
        // that is no date, another lane's derived messages, figures of another version.
        insert("lane", Some("2026-11-27"), next_day, true);
        insert("lane", None, noon, true);
        insert("lane", None, next_day, true);
        insert("lane", Some("2026-13-45"), noon, true);
        insert("lane.inventory", Some("2026-11-27"), noon, true);
        insert("lane", Some("2026-11-27"), noon, false);
        s.scan().unwrap();
        let scanned_through = s.sums[&day].1;
        assert!(scanned_through > 0, "the scan added to the computed day");
        let (incremental, through) = s.compute(day).unwrap();
        let (whole, whole_through) = summariser(&path).compute(day).unwrap();
        assert_eq!(incremental, whole);
        assert_eq!(through, whole_through);
        assert_eq!(incremental.store.transactions, 2 * 4, "{incremental:?}");
    }

    #[test]
    fn an_early_cutoff_closes_the_evening_before_in_local_time() {
        let c = calendar("Europe/Berlin", "04:00");
        let day: Date = "2026-11-27".parse().unwrap();
        // 04:00 CET on the 28th is 03:00 UTC.
        assert_eq!(
            c.closes_at(day).unwrap(),
            "2026-11-28T03:00:00Z".parse::<Timestamp>().unwrap()
        );
        let late_night: Timestamp = "2026-11-28T02:30:00Z".parse().unwrap();
        assert_eq!(c.day_of(late_night), day);
        let morning: Timestamp = "2026-11-28T03:30:00Z".parse().unwrap();
        assert_eq!(c.day_of(morning).to_string(), "2026-11-28");
    }

    #[test]
    fn a_late_cutoff_moves_late_sales_to_the_next_day_and_dst_is_respected() {
        let c = calendar("America/New_York", "22:00");
        let day: Date = "2026-07-04".parse().unwrap();
        // EDT is UTC−4 in July.
        assert_eq!(
            c.closes_at(day).unwrap(),
            "2026-07-05T02:00:00Z".parse::<Timestamp>().unwrap()
        );
        let after: Timestamp = "2026-07-05T02:30:00Z".parse().unwrap();
        assert_eq!(c.day_of(after).to_string(), "2026-07-05");
        let (start, end) = c.window_ms(day).unwrap();
        assert_eq!(end - start, 24 * 3_600_000);
        // The day the clocks go back is 25 hours long.
        let fall: Date = "2026-11-01".parse().unwrap();
        let (start, end) = c.window_ms(fall).unwrap();
        assert_eq!(end - start, 25 * 3_600_000);
    }
}
