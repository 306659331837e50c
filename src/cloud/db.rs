//! The PostgreSQL connection: tokio-postgres with its connection task on the runtime.

use tokio_postgres::{Client, NoTls};

/// Why the database could not be reached or refused a statement.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Connecting failed.
    #[error("cannot connect to PostgreSQL ({url}): {source}")]
    Connect {
        /// The configured connection string, for the operator.
        url: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("PostgreSQL: {0}")]
    Query(#[from] tokio_postgres::Error),
}

/// Connects; the connection is driven by its own task and ends with the client.
pub async fn connect(url: &str) -> Result<Client, DbError> {
    // The cloud's database sits on its private network or loopback: no TLS to it here.
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|source| DbError::Connect {
            url: url.to_string(),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = ?e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}
