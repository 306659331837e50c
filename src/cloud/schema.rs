//! The PostgreSQL schema, in versioned migrations recorded in `schema_migrations`. Every
//! instance migrates at start; an advisory lock lets only one do it at a time.

use super::db::DbError;
use tokio_postgres::Client;

/// Arbitrary key of the advisory lock that serialises migrations across instances.
const MIGRATION_LOCK: i64 = 0x706f_7365_6467_6501;

/// (version, what it adds, SQL). Append only: a released migration never changes.
const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "events, inventory, summaries, lanes and gaps, resync requests, duplicates, rejected messages",
    r#"
CREATE TABLE events (
    event_id        text PRIMARY KEY,
    tenant_id       text NOT NULL,
    store_id        text NOT NULL,
    source          text NOT NULL,
    seq             bigint NOT NULL,
    register_id     text NOT NULL,
    event_type      text NOT NULL,
    business_day    date,
    idempotency_key text,
    payload         jsonb NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_store_day ON events (tenant_id, store_id, business_day);

CREATE TABLE inventory_messages (
    event_id           text PRIMARY KEY,
    tenant_id          text NOT NULL,
    store_id           text NOT NULL,
    source             text NOT NULL,
    seq                bigint NOT NULL,
    register_id        text NOT NULL,
    business_day       date,
    of_idempotency_key text,
    payload            jsonb NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inventory_store_day ON inventory_messages (tenant_id, store_id, business_day);

-- One row per stock movement: a SKU (or a department for items without one) and its
-- signed change.
CREATE TABLE inventory_movements (
    event_id   text NOT NULL REFERENCES inventory_messages ON DELETE CASCADE,
    line       int NOT NULL,
    tenant_id  text NOT NULL,
    store_id   text NOT NULL,
    sku        text,
    gtin       text,
    department text,
    quantity   numeric NOT NULL,
    uom        text,
    reason     text NOT NULL,
    PRIMARY KEY (event_id, line)
);
CREATE INDEX inventory_movements_sku ON inventory_movements (tenant_id, store_id, sku);

-- Every revision is kept; the latest is the truth.
CREATE TABLE summaries (
    tenant_id    text NOT NULL,
    store_id     text NOT NULL,
    business_day date NOT NULL,
    revision     bigint NOT NULL,
    closed       text,
    computed_at  text,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, store_id, business_day, revision)
);
CREATE VIEW latest_summaries AS
    SELECT DISTINCT ON (tenant_id, store_id, business_day) *
    FROM summaries ORDER BY tenant_id, store_id, business_day, revision DESC;

-- Every seq that arrived, per store and lane (events and derived lanes alike).
CREATE TABLE received (
    tenant_id    text NOT NULL,
    store_id     text NOT NULL,
    source       text NOT NULL,
    seq          bigint NOT NULL,
    PRIMARY KEY (tenant_id, store_id, source, seq)
);

-- Per lane: every seq up to `contiguous` arrived; `known_high` is the highest seq known
-- to exist (arrived, or named by the store's status or summary).
CREATE TABLE lanes (
    tenant_id  text NOT NULL,
    store_id   text NOT NULL,
    source     text NOT NULL,
    contiguous bigint NOT NULL DEFAULT 0,
    known_high bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, store_id, source)
);

CREATE TABLE gaps (
    tenant_id       text NOT NULL,
    store_id        text NOT NULL,
    source          text NOT NULL,
    from_seq        bigint NOT NULL,
    to_seq          bigint NOT NULL,
    state           text NOT NULL CHECK (state IN ('open', 'closed', 'lost')),
    first_seen      timestamptz NOT NULL DEFAULT now(),
    attempts        int NOT NULL DEFAULT 0,
    last_request_id text,
    last_request_at timestamptz,
    closed_at       timestamptz,
    PRIMARY KEY (tenant_id, store_id, source, from_seq, to_seq)
);
CREATE INDEX gaps_open ON gaps (state) WHERE state <> 'closed';

CREATE TABLE resync_requests (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL,
    store_id     text NOT NULL,
    source       text NOT NULL,
    from_seq     bigint NOT NULL,
    to_seq       bigint NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    outcome      text,
    reply        jsonb,
    replied_at   timestamptz
);

CREATE TABLE agent_status (
    tenant_id   text NOT NULL,
    store_id    text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, store_id)
);

-- Messages absorbed because their event_id was already stored.
CREATE TABLE duplicates (
    tenant_id    text NOT NULL,
    store_id     text NOT NULL,
    business_day date,
    count        bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (tenant_id, store_id, business_day)
);

-- Messages that could not be stored (not JSON, wrong schema, a store id that is not the
-- topic's): kept with the reason, acknowledged so they do not loop.
CREATE TABLE rejected (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    reason      text NOT NULL,
    payload     bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
"#,
)];

/// Applies the migrations this database lacks; returns the schema version.
pub async fn migrate(client: &mut Client) -> Result<i32, DbError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version int PRIMARY KEY,
            description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let mut version = current;
    for (v, what, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[v, what],
        )
        .await?;
        tracing::info!(version = v, what, "PostgreSQL schema migrated");
        version = *v;
    }
    tx.commit().await?;
    Ok(version)
}
