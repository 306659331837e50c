//! `schema/event-v1.json`: it is what the model types generate, and every event the
//! agent stores validates against it — the simulator's registers (retail and restaurant,
//! in every format the simulator speaks) and the decoders over the shared real-world
//! fixtures and tests/data, each through ingest exactly as a source runs it. The other
//! payload schemas in `schema/` (`posedge::contract`) are what their types generate too,
//! and the inventory messages, summaries and resync requests the code produces or accepts
//! validate against them.

use jsonschema::Validator;
use posedge::config::Format;
use posedge::contract::{HAND_WRITTEN, ID_BASE, generated};
use posedge::decode::{self, escpos::CodePage};
use posedge::derive::summary::{Closed, DaySummary, SummaryMessage};
use posedge::event::{EVENT_TYPES, EventId, Origin, RegisterId, SCHEMA, Seq, SourceName};
use posedge::ingest::{KeyRule, Prepared, SourceContext, prepare};
use posedge::model::schema::event_schema;
use posedge::outbox::resync::Request as ResyncRequest;
use posedge::sim::{
    encode,
    generate::{Generator, Profile},
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const REGENERATE: &str = "cargo run --example gen-schema --features schema";
const RECEIVED_AT: &str = "2026-11-27T12:00:00.000Z";
/// Events per simulated register.
const SIMULATED: usize = 800;

fn committed() -> Value {
    committed_file("event-v1.json")
}

/// `schema/<file>` as JSON.
fn committed_file(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; generate it with `{REGENERATE}`", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}); regenerate with `{REGENERATE}`",
            path.display()
        )
    })
}

fn validator() -> Validator {
    validator_for("event-v1.json")
}

fn validator_for(file: &str) -> Validator {
    // No `$ref` leaves the document: the crate is built without its HTTP and file
    // resolvers. Formats (date-time, date, uuid) are asserted, not just annotations.
    jsonschema::options()
        .should_validate_formats(true)
        .build(&committed_file(file))
        .unwrap_or_else(|e| panic!("schema/{file} compiles: {e}"))
}

/// Every reason `event` fails, one per line; empty when it validates.
fn errors(v: &Validator, event: &Value) -> String {
    v.iter_errors(event)
        .map(|e| format!("  at {}: {e}\n", e.instance_path()))
        .collect()
}

fn ctx(format: Format, kind: &'static str, currency: Option<&str>) -> SourceContext {
    SourceContext {
        store_id: "store-042".into(),
        origin: Origin {
            name: SourceName::new("lane1"),
            kind,
            format: format.as_str(),
        },
        format,
        default_register: Some(RegisterId::new("reg-9")),
        options: decode::Options {
            default_currency: currency.map(|c| c.parse().expect("currency")),
            code_page: Some(CodePage::Cp858),
        },
        keys: if kind == "printer" {
            KeyRule::Unique
        } else {
            KeyRule::Content
        },
        mapping: Default::default(),
    }
}

/// Counts of one corpus.
#[derive(Default)]
struct Tally {
    records: usize,
    events: usize,
    rejected: usize,
    invalid: Vec<String>,
}

impl Tally {
    /// Runs one record through ingest as a source does, completes each event as the
    /// outbox does (`event_id`, `seq`), and validates the stored bytes.
    fn record(&mut self, v: &Validator, ctx: &SourceContext, raw: &[u8], what: &str) {
        self.records += 1;
        for item in prepare(ctx, raw, RECEIVED_AT).items {
            match item {
                Prepared::Event(e) => {
                    self.events += 1;
                    let seq = Seq::new(self.events as u64);
                    let stored = e.finish(&EventId::new_v7(), seq);
                    let event: Value = serde_json::from_slice(&stored).expect("stored JSON");
                    let why = errors(v, &event);
                    if !why.is_empty() && self.invalid.len() < 20 {
                        self.invalid.push(format!("{what}:\n{why}  event: {event}"));
                    }
                    if !why.is_empty() && self.invalid.len() == 20 {
                        self.invalid.push("(more left out)".into());
                    }
                }
                Prepared::Rejected(_) => self.rejected += 1,
            }
        }
    }

    fn check(self, corpus: &str) {
        println!(
            "{corpus}: {} records, {} events validated, {} refused by the decoder",
            self.records, self.events, self.rejected
        );
        assert!(
            self.invalid.is_empty(),
            "{corpus}: events that do not validate against schema/event-v1.json:\n{}",
            self.invalid.join("\n")
        );
    }
}

#[test]
fn committed_schema_is_what_the_types_generate() {
    let generated = generated();
    assert_eq!(generated[0].1, event_schema());
    assert_eq!(generated[0].1["title"], SCHEMA);
    for (file, schema) in &generated {
        assert!(
            committed_file(file) == *schema,
            "schema/{file} is out of date with the Rust types; regenerate it with\n\n    {REGENERATE}\n\nand review the diff"
        );
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{file}"
        );
        assert_eq!(schema["$id"], format!("{ID_BASE}{file}"), "{file}");
        assert!(schema["title"].is_string(), "{file} has a title");
    }
}

/// Every file in `schema/` is generated or named hand-written, and compiles.
#[test]
fn every_schema_file_is_known_and_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let known: Vec<&str> = generated()
        .iter()
        .map(|(f, _)| *f)
        .chain(HAND_WRITTEN.iter().copied())
        .collect();
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).expect("schema/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            known.contains(&name.as_str()),
            "schema/{name} is neither generated (posedge::contract::generated) nor listed in HAND_WRITTEN"
        );
        validator_for(&name);
        found += 1;
    }
    assert_eq!(found, known.len(), "every listed schema is committed");
}

/// Stored events of the simulated retail register as the outbox would store them, with
/// the inventory messages ingest derives from them.
fn simulated_day() -> (Vec<Value>, Vec<Value>) {
    let ctx = ctx(Format::Ndjson, "tcp", None);
    let mut g = Generator::new(21, Profile::Retail, "reg-1", "2026-11-27");
    let (mut events, mut inventory) = (Vec::new(), Vec::new());
    for _ in 0..SIMULATED {
        let raw = serde_json::to_vec(&g.next_event()).expect("JSON");
        for item in prepare(&ctx, &raw, RECEIVED_AT).items {
            let Prepared::Event(mut e) = item else {
                continue;
            };
            if let Some(d) = e.derived.take() {
                let seq = Seq::new(inventory.len() as u64 + 1);
                let bytes = d.finish(&EventId::new_v7(), seq);
                inventory.push(serde_json::from_slice(&bytes).expect("JSON"));
            }
            let seq = Seq::new(events.len() as u64 + 1);
            let bytes = e.finish(&EventId::new_v7(), seq);
            events.push(serde_json::from_slice(&bytes).expect("JSON"));
        }
    }
    (events, inventory)
}

#[test]
fn derived_messages_validate_against_their_schemas() {
    let (events, inventory) = simulated_day();
    assert!(
        inventory.len() > 100,
        "{} inventory messages",
        inventory.len()
    );
    let v = validator_for("inventory-v1.json");
    for m in &inventory {
        assert_eq!(errors(&v, m), "", "inventory message: {m}");
    }
    let mut broken = inventory[0].clone();
    broken["movements"][0]["quantity"] = json!(-1);
    assert!(!v.is_valid(&broken), "a numeric quantity must not validate");

    let mut day = DaySummary::default();
    for e in &events {
        let seq = e["seq"].as_u64().expect("seq");
        day.add("lane1", seq, &serde_json::to_vec(e).expect("JSON"));
    }
    for (i, m) in inventory.iter().enumerate() {
        day.add(
            "lane1.inventory",
            i as u64 + 1,
            &serde_json::to_vec(m).expect("JSON"),
        );
    }
    assert!(day.store.transactions > 0);
    let v = validator_for("summary-v1.json");
    for closed in [None, Some(Closed::Registers), Some(Closed::Cutoff)] {
        let message = SummaryMessage {
            schema: posedge::derive::summary::SCHEMA.into(),
            tenant_id: "acme".into(),
            store_id: "store-042".into(),
            business_day: "2026-11-27".into(),
            time_zone: "Europe/Berlin".into(),
            revision: 2,
            closed,
            computed_at: "2026-11-27T23:00:00.123456789Z".into(),
            day: day.clone(),
        };
        let m = serde_json::to_value(&message).expect("JSON");
        assert_eq!(errors(&v, &m), "", "summary: {m}");
    }
}

#[test]
fn resync_requests_the_agent_accepts_validate_and_the_malformed_do_not() {
    let v = validator_for("resync-request-v1.json");
    let ok =
        json!({"id": "req-7.a_b", "source": "lane1.inventory", "from_seq": 1, "to_seq": 99_999});
    let bytes = serde_json::to_vec(&ok).expect("JSON");
    assert!(ResyncRequest::parse(&bytes).is_ok());
    assert_eq!(errors(&v, &ok), "");
    for bad in [
        json!({"id": "r/1", "source": "lane1", "from_seq": 1, "to_seq": 2}),
        json!({"id": "r", "source": "lane1", "from_seq": 0, "to_seq": 2}),
        json!({"id": "r", "source": "lane1", "from_seq": 1}),
        json!({"id": "r", "source": "lane1", "from_seq": 1, "to_seq": 2, "x": 1}),
        json!({"id": "r", "source": "lane1", "from_seq": "1", "to_seq": 2}),
    ] {
        let bytes = serde_json::to_vec(&bad).expect("JSON");
        assert!(ResyncRequest::parse(&bytes).is_err(), "{bad}");
        assert!(!v.is_valid(&bad), "{bad} must not validate");
    }
}

#[test]
fn the_schema_knows_every_event_type_and_format() {
    let schema = committed();
    let types: Vec<&str> = schema["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .map(|b| {
            b["properties"]["event_type"]["const"]
                .as_str()
                .expect("const")
        })
        .collect();
    assert_eq!(types, EVENT_TYPES);
    let formats: Vec<&str> = schema["$defs"]["SourceFormat"]["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .filter_map(|b| b["const"].as_str())
        .collect();
    for f in [
        Format::Ndjson,
        Format::Poslog,
        Format::Naxml,
        Format::Kv,
        Format::Escpos,
    ] {
        assert!(formats.contains(&f.as_str()), "{}", f.as_str());
    }
}

/// The simulated registers' events, as NDJSON and through every other decoder the
/// simulator can encode them for.
#[test]
fn simulated_registers_validate_in_every_format() {
    let v = validator();
    for profile in [Profile::Retail, Profile::Restaurant] {
        let mut g = Generator::new(11, profile, "reg-1", "2026-11-27");
        let events: Vec<Value> = (0..SIMULATED).map(|_| g.next_event()).collect();
        for (format, kind) in [
            (Format::Ndjson, "tcp"),
            (Format::Kv, "serial"),
            (Format::Poslog, "tcp"),
            (Format::Escpos, "printer"),
        ] {
            let ctx = ctx(format, kind, None);
            let mut tally = Tally::default();
            for (i, ev) in events.iter().enumerate() {
                if let Some(raw) = encode::record(format, ev, CodePage::Cp858) {
                    tally.record(&v, &ctx, &raw, &format!("{profile:?} event {i}"));
                }
            }
            assert!(tally.events > 0, "{profile:?} {}", format.as_str());
            tally.check(&format!("simulator {profile:?} as {}", format.as_str()));
        }
    }
}

/// `shared/fixtures/real/<kind>` beside the checkout, else /work/shared (as src/fixtures.rs).
fn fixture_dir(kind: &str) -> Option<PathBuf> {
    let rel = Path::new("shared/fixtures/real").join(kind);
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join(&rel))
        .chain([Path::new("/work").join(&rel)])
        .find(|p| p.is_dir())
}

fn files(dir: Option<PathBuf>) -> Vec<(String, Vec<u8>)> {
    let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("fixture");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    out
}

fn fixtures(corpus: &str, format: Format, kind: &'static str, found: Vec<(String, Vec<u8>)>) {
    if found.is_empty() {
        println!("skipped: {corpus} not found");
        return;
    }
    let v = validator();
    let ctx = ctx(format, kind, Some("EUR"));
    let mut tally = Tally::default();
    for (name, bytes) in &found {
        tally.record(&v, &ctx, bytes, name);
    }
    tally.check(corpus);
}

#[test]
fn poslog_fixtures_validate() {
    fixtures(
        "shared/fixtures/real/poslog",
        Format::Poslog,
        "file",
        files(fixture_dir("poslog")),
    );
}

#[test]
fn escpos_fixtures_validate() {
    fixtures(
        "shared/fixtures/real/escpos",
        Format::Escpos,
        "printer",
        files(fixture_dir("escpos")),
    );
}

#[test]
fn naxml_test_data_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/naxml");
    let found = files(Some(dir));
    assert!(
        !found.is_empty(),
        "tests/data/naxml is part of the checkout"
    );
    fixtures("tests/data/naxml", Format::Naxml, "file", found);
}

/// A stored event built from one NDJSON line, as the agent would store it.
fn stored_ndjson(line: &Value) -> Value {
    let ctx = ctx(Format::Ndjson, "tcp", None);
    let raw = serde_json::to_vec(line).expect("JSON");
    match prepare(&ctx, &raw, RECEIVED_AT).items.pop() {
        Some(Prepared::Event(e)) => {
            serde_json::from_slice(&e.finish(&EventId::new_v7(), Seq::new(1))).expect("JSON")
        }
        _ => panic!("ingest refused {line}"),
    }
}

fn a_stored_sale() -> Value {
    let mut g = Generator::new(5, Profile::Retail, "reg-1", "2026-11-27");
    let ev = std::iter::repeat_with(|| g.next_event())
        .find(|e| {
            e["event_type"] == "transaction"
                && e["body"]["lines"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|l| l.get("card").is_some()))
        })
        .expect("a card sale");
    stored_ndjson(&ev)
}

/// One way to break a valid event.
type Breakage = Box<dyn Fn(&mut Value)>;

/// The schema must be able to say no.
#[test]
fn events_outside_the_contract_are_rejected() {
    let v = validator();
    let sale = a_stored_sale();
    assert_eq!(errors(&v, &sale), "", "the unchanged sale validates");

    let tender = sale["body"]["lines"]
        .as_array()
        .and_then(|l| l.iter().position(|l| l["kind"] == "tender"))
        .expect("a tender line");
    let item = sale["body"]["lines"]
        .as_array()
        .and_then(|l| l.iter().position(|l| l["kind"] == "item"))
        .expect("an item line");
    let broken: Vec<(&str, Breakage)> = vec![
        (
            "a float amount",
            Box::new(|e| e["body"]["totals"]["grand"] = json!(12.5)),
        ),
        // (10.0 cannot be told from 10: JSON Schema's `integer` is any number with a zero
        // fraction, so no schema can refuse a whole-valued float.)
        (
            "a float tender amount",
            Box::new(move |e| e["body"]["lines"][tender]["amount"] = json!(10.01)),
        ),
        (
            "a numeric quantity",
            Box::new(move |e| e["body"]["lines"][item]["quantity"] = json!(1)),
        ),
        (
            "no event_id",
            Box::new(|e| {
                e.as_object_mut().map(|o| o.remove("event_id"));
            }),
        ),
        (
            "an event_id that is not a UUIDv7",
            Box::new(|e| e["event_id"] = json!("0f8fad5b-d9cb-469f-a165-70867728950e")),
        ),
        ("seq 0", Box::new(|e| e["seq"] = json!(0))),
        ("a string seq", Box::new(|e| e["seq"] = json!("7"))),
        (
            "an unknown event_type",
            Box::new(|e| e["event_type"] = json!("sale")),
        ),
        (
            "a receipt body on a transaction",
            Box::new(|e| e["event_type"] = json!("receipt")),
        ),
        (
            "an unknown tender type",
            Box::new(move |e| e["body"]["lines"][tender]["type"] = json!("bitcoin")),
        ),
        (
            "a lower-case currency",
            Box::new(|e| e["body"]["currency"] = json!("eur")),
        ),
        (
            "an unmasked PAN",
            Box::new(move |e| {
                e["body"]["lines"][tender]["card"]["pan"] = json!("4111111111111111")
            }),
        ),
        (
            "a null member",
            Box::new(|e| e["operator_id"] = Value::Null),
        ),
        (
            "an unknown top-level member",
            Box::new(|e| e["vendor_field"] = json!("x")),
        ),
        (
            "an unknown member in a line",
            Box::new(move |e| e["body"]["lines"][item]["qty"] = json!("1")),
        ),
        (
            "a received_at that is not RFC 3339",
            Box::new(|e| e["received_at"] = json!("27.11.2026 12:00")),
        ),
        (
            "an unknown source kind",
            Box::new(|e| e["source"]["kind"] = json!("usb")),
        ),
        (
            "a wrong schema tag",
            Box::new(|e| e["schema"] = json!("posedge.event/2")),
        ),
    ];
    for (what, change) in broken {
        let mut e = sale.clone();
        change(&mut e);
        assert!(!v.is_valid(&e), "{what} must not validate: {e}");
    }
}

#[test]
fn ndjson_edge_cases_that_are_stored() {
    let v = validator();
    // The generator plants raw PANs in `card.pan`; stored, they are masked and validate.
    let mut g = Generator::new(3, Profile::Retail, "reg-1", "2026-11-27");
    let mut masked = 0;
    for _ in 0..2000 {
        let ev = g.next_event();
        let planted = ev["body"]["lines"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["card"].get("pan").is_some()));
        if planted {
            let stored = stored_ndjson(&ev);
            assert_eq!(errors(&v, &stored), "");
            masked += 1;
        }
    }
    assert!(masked > 0, "the generator planted a card.pan");

    // A transaction body that is not one is stored as sent, flagged; the flag is what
    // makes it valid.
    let odd = stored_ndjson(&json!({"event_type": "transaction", "body": {"note": "free text"}}));
    assert_eq!(errors(&v, &odd), "");
    let mut unflagged = odd.clone();
    unflagged["body"]
        .as_object_mut()
        .map(|b| b.remove("integrity"));
    assert!(!v.is_valid(&unflagged));

    // The smallest event a register may send.
    let minimal = stored_ndjson(&json!({"event_type": "no_sale"}));
    assert_eq!(errors(&v, &minimal), "");
}
