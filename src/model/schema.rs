//! The JSON Schema of a stored `posedge.event/1` event (DESIGN §3), derived from the model
//! types: `schema/event-v1.json` is [`event_schema`] pretty-printed. Regenerate it (and
//! the other payloads' schemas, `crate::contract`) with `cargo run --example gen-schema
//! --features schema`; `tests/schema.rs` fails when the committed file differs, and
//! validates every event the decoders and the simulator produce against it.
//!
//! The schema describes what the outbox stores and the uplink publishes: the register's
//! members after redaction plus the agent-owned envelope. Policy, beyond the types:
//! - objects with named members are closed (`additionalProperties: false`); vendor data
//!   belongs in `ext`, the only open object besides the bodies of untyped event types;
//! - a member that is not known is absent, never `null`;
//! - `card.pan` is not part of the model, but a register may send one in NDJSON and the
//!   redactor masks it in place, so the schema allows it only in its masked form
//!   (first 6, `*`s, last 4): an unmasked PAN in a stored event fails validation;
//! - an NDJSON `transaction` body that is not a model transaction is stored as sent and
//!   flagged (`integrity`: "body is not a posedge.event/1 transaction: …"), so that flag
//!   admits any object.

use super::Flags;
use super::receipt::Receipt;
use super::transaction::{PosSequence, Transaction};
use schemars::generate::SchemaSettings;
use schemars::transform::{Transform, transform_subschemas};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value};

/// `$id` of the schema.
pub const SCHEMA_ID: &str = "https://posedge.invalid/schema/event-v1.json";

/// `register_id`, `store_id` and source names: what the config and ingest accept.
pub const TOPIC_SAFE: &str = "^[A-Za-z0-9_.-]{1,64}$";

/// How the redactor masks a PAN: first 6 and last 4 digits, one `*` per hidden digit.
pub const MASKED_PAN: &str = "^[0-9]{6}[*]{3,9}[0-9]{4}$";

/// The finding the NDJSON decoder records for a transaction body it could not read.
pub const UNREADABLE_BODY: &str = "body is not a posedge.event/1 transaction";

/// One event as stored and published.
#[derive(JsonSchema)]
#[schemars(
    title = "posedge.event/1",
    description = "One POS event as the posedge agent stores and publishes it: the register's members (after card-data redaction) and the agent-owned envelope (schema, event_id, seq, idempotency_key, store_id, source, received_at). Money is integer minor units, quantities are decimal strings, timestamps RFC 3339, enums lower_snake_case; never floats."
)]
pub struct StoredEvent {
    /// Always "posedge.event/1".
    #[schemars(schema_with = "schema_tag")]
    pub schema: String,
    /// UUIDv7 assigned at ingest, persisted, reused on resend.
    #[schemars(schema_with = "uuid_v7")]
    pub event_id: String,
    /// Per-source sequence number: gapless, starts at 1, survives restarts.
    #[schemars(range(min = 1))]
    pub seq: u64,
    /// De-duplication key: `store|register|business_day|pos_sequence|event_type` when the register numbers its records, else derived from the redacted record bytes (ARCHITECTURE.md).
    #[schemars(length(min = 1))]
    pub idempotency_key: String,
    /// Store id from the agent's config.
    #[schemars(regex(pattern = TOPIC_SAFE))]
    pub store_id: String,
    /// Register: from the input, else from the source's config.
    #[schemars(regex(pattern = TOPIC_SAFE))]
    pub register_id: String,
    /// Where the event came from.
    pub source: Source,
    /// Agent clock (UTC) when the record arrived.
    #[schemars(extend("format" = "date-time"))]
    pub received_at: String,
    /// The register's own transaction number.
    #[serde(default)]
    pub pos_sequence: Option<PosSequence>,
    /// The register's business day (YYYY-MM-DD).
    #[serde(default)]
    #[schemars(extend("format" = "date"))]
    pub business_day: Option<String>,
    /// Operator (cashier) id.
    #[serde(default)]
    pub operator_id: Option<String>,
    /// Register clock.
    #[serde(default)]
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: Option<String>,
    /// Training, offline payment, reprint; absent members are false.
    #[serde(default)]
    pub flags: Flags,
    /// `event_type` and the `body` it implies.
    #[serde(flatten)]
    pub typed: TypedBody,
    /// Vendor fields with no canonical home (never card data).
    #[serde(default)]
    pub ext: Map<String, Value>,
}

/// `source` of a stored event.
#[derive(JsonSchema)]
pub struct Source {
    /// Configured source name.
    #[schemars(regex(pattern = TOPIC_SAFE))]
    pub name: String,
    /// How the bytes arrived.
    pub kind: SourceKind,
    /// The decoder that read them.
    pub format: SourceFormat,
    /// SHA-256 (lower-case hex) of the record's bytes after redaction.
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub raw_sha256: String,
}

/// `source.kind`.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A serial port.
    Serial,
    /// The LAN listener.
    Tcp,
    /// The printer tap.
    Printer,
    /// Files (`posedge decode`).
    File,
}

/// `source.format`: the config's `Format` names.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// One JSON event per line.
    Ndjson,
    /// ARTS POSLog XML.
    Poslog,
    /// NAXML.
    Naxml,
    /// key=value journal lines.
    Kv,
    /// ESC/POS receipt stream.
    Escpos,
}

/// `event_type` with its `body`: typed for transactions and receipts, a small object of
/// its own (`{"action": "sign_on"}`) for every other type.
#[derive(JsonSchema)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum TypedBody {
    /// Sale, return, exchange.
    Transaction {
        /// The transaction.
        body: TransactionBody,
    },
    /// Drawer opened without a sale.
    NoSale {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
    /// Drawer opened or closed.
    Drawer {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
    /// Till opened, closed, counted.
    Till {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
    /// Shift start or end.
    Shift {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
    /// Operator sign-on or sign-off.
    Operator {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
    /// Pick-up, loan, paid-in, paid-out.
    CashMovement {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
    /// Stock adjusted outside a sale.
    InventoryAdjustment {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
    /// Price changed at the register.
    PriceChange {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
    /// Customer record changed.
    CustomerUpdate {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
    /// A printed receipt from the printer tap.
    Receipt {
        /// What the printer tap read off the paper.
        body: Receipt,
    },
    /// Device state (printer, scanner, drawer).
    DeviceStatus {
        /// Type-specific members.
        #[serde(default)]
        body: Map<String, Value>,
    },
}

/// The `body` of a `transaction`: a [`Transaction`], or a body NDJSON could not read as
/// one, kept as sent and flagged.
pub struct TransactionBody;

impl JsonSchema for TransactionBody {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TransactionBody".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let transaction = generator.subschema_for::<Transaction>();
        json_schema!({
            "anyOf": [
                transaction,
                {
                    "title": "UnreadableTransactionBody",
                    "description": "A transaction body that is not a posedge.event/1 transaction, stored as the register sent it and flagged in `integrity` (DESIGN §3: kept, never fixed).",
                    "type": "object",
                    "required": ["integrity"],
                    "properties": {
                        "integrity": {
                            "type": "array",
                            "items": { "type": "string" },
                            "contains": { "pattern": format!("^{}", UNREADABLE_BODY.replace('.', "\\.")) },
                        },
                    },
                    "additionalProperties": true,
                },
            ],
        })
    }
}

/// `schema`: the constant tag.
fn schema_tag(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "const": crate::event::SCHEMA })
}

/// `event_id`: a UUID of version 7, lower-case as `uuid` writes it.
pub fn uuid_v7(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "uuid",
        "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
    })
}

/// For `Card`: a register-supplied `pan`, allowed only as the redactor leaves it.
pub fn masked_pan(schema: &mut Schema) {
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.insert(
            "pan".into(),
            serde_json::json!({
                "description": "Not part of the model: a PAN a register sent in NDJSON, as the redactor masked it (first 6, last 4). An unmasked PAN never validates.",
                "type": "string",
                "pattern": MASKED_PAN,
            }),
        );
    }
}

/// Members that are not known are left out, never `null`: drops the `null` alternative
/// schemars gives every `Option`.
#[derive(Clone)]
struct NoNulls;

impl Transform for NoNulls {
    fn transform(&mut self, schema: &mut Schema) {
        transform_subschemas(self, schema);
        if let Some(obj) = schema.as_object_mut() {
            drop_null(obj);
        }
    }
}

/// A written payload: a member serde may skip (not `required`) is absent when unknown,
/// never `null`; a member it always writes keeps its `null` (`closed: null`).
#[derive(Clone)]
struct SkippedNotNull;

impl Transform for SkippedNotNull {
    fn transform(&mut self, schema: &mut Schema) {
        transform_subschemas(self, schema);
        let Some(obj) = schema.as_object_mut() else {
            return;
        };
        let required: Vec<Value> = match obj.get("required") {
            Some(Value::Array(r)) => r.clone(),
            _ => Vec::new(),
        };
        if let Some(Value::Object(props)) = obj.get_mut("properties") {
            for (name, prop) in props.iter_mut() {
                if !required.iter().any(|r| r == name.as_str())
                    && let Value::Object(p) = prop
                {
                    drop_null(p);
                }
            }
        }
    }
}

/// Drops the `null` alternative of one schema (its `type` list or `anyOf` branch).
fn drop_null(obj: &mut Map<String, Value>) {
    if obj.get("default") == Some(&Value::Null) {
        obj.remove("default");
    }
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            obj.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(any)) = obj.get_mut("anyOf") {
        any.retain(|s| s.get("type").is_none_or(|t| t != "null"));
        if let [only] = any.as_slice() {
            let only = only.clone();
            obj.remove("anyOf");
            if let Value::Object(inner) = only {
                for (k, v) in inner {
                    obj.entry(k).or_insert(v);
                }
            }
        }
    }
}

/// Closes every object with named members (unless its schema already says how extra
/// members are treated). A schema that combines its members with a `$ref` or a `oneOf`
/// (the envelope and its body variants, a line's `kind` and its struct) is closed where
/// all of them are seen, with `unevaluatedProperties`; its parts stay open.
fn close(root: &mut Value) {
    let mut composed = Vec::new();
    find_composed(root, &mut composed);
    if let Some(Value::Object(defs)) = root.get_mut("$defs") {
        for (name, def) in defs.iter_mut() {
            close_object(def, composed.contains(&format!("#/$defs/{name}")));
        }
    }
    close_object(root, false);
}

/// The `$ref`s that sit beside `properties`: their targets are parts of a larger object.
fn find_composed(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if o.contains_key("properties")
                && let Some(Value::String(r)) = o.get("$ref")
            {
                out.push(r.clone());
            }
            o.values().for_each(|x| find_composed(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| find_composed(x, out)),
        _ => {}
    }
}

/// Closes `v` (unless `part`) and the schemas inside it, except `$defs` (closed by
/// [`close`]) and branches of a combination whose members `v` itself closes over.
fn close_object(v: &mut Value, part: bool) {
    let Value::Object(o) = v else { return };
    let combines = ["$ref", "oneOf", "anyOf", "allOf"]
        .iter()
        .any(|k| o.contains_key(*k));
    let named = o.contains_key("properties");
    let decided = o.contains_key("additionalProperties") || o.contains_key("unevaluatedProperties");
    for (key, child) in o.iter_mut() {
        match (key.as_str(), child) {
            ("$defs", _) => {}
            ("oneOf" | "anyOf" | "allOf", Value::Array(branches)) => {
                for b in branches {
                    close_object(b, named);
                }
            }
            ("properties", Value::Object(props)) => {
                for p in props.values_mut() {
                    close_object(p, false);
                }
            }
            ("items" | "additionalProperties" | "contains", c) => close_object(c, false),
            _ => {}
        }
    }
    if named && !decided && !part {
        let key = if combines {
            "unevaluatedProperties"
        } else {
            "additionalProperties"
        };
        o.insert(key.into(), Value::Bool(false));
    }
}

/// Which side of serde a payload's schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// What the agent reads or stores: a member that is not known is absent, never `null`.
    Read,
    /// What the agent writes from a type: every member serde writes is `required`.
    Written,
}

/// The closed, draft 2020-12 schema of `T` with `$id` first, as committed in `schema/`.
pub fn generate<T: JsonSchema>(id: &str, side: Side) -> Value {
    let settings = SchemaSettings::draft2020_12();
    let mut generator = match side {
        Side::Read => settings.for_deserialize(),
        Side::Written => settings.for_serialize(),
    }
    .into_generator();
    let mut schema = generator.root_schema_for::<T>();
    match side {
        Side::Read => NoNulls.transform(&mut schema),
        Side::Written => SkippedNotNull.transform(&mut schema),
    }
    let mut value = schema.to_value();
    close(&mut value);
    if let Value::Object(root) = &mut value {
        let mut ordered = Map::new();
        ordered.insert("$schema".into(), root.remove("$schema").unwrap_or_default());
        ordered.insert("$id".into(), Value::from(id));
        ordered.append(root);
        *root = ordered;
    }
    value
}

/// The schema of a stored event, as committed in `schema/event-v1.json`.
pub fn event_schema() -> Value {
    generate::<StoredEvent>(SCHEMA_ID, Side::Read)
}
