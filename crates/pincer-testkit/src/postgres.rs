//! The test Postgres: a fresh schema per test on the server `PINCER_TEST_POSTGRES` names
//! (`.ci/run` starts a throwaway cluster). Outside CI a missing server skips with a message;
//! under `CI=true` it fails the test — a real part is never silently skipped.

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A schema of its own on the test server.
#[derive(Debug)]
pub struct PgSchema {
    /// The server's URL.
    pub url: String,
    /// The schema's name.
    pub schema: String,
    /// A connection for the test's own queries, with `search_path` set to the schema.
    pub client: tokio_postgres::Client,
}

impl PgSchema {
    /// Creates a fresh schema, or returns `None` (with a message) outside CI without a server.
    ///
    /// # Panics
    /// Under `CI=true` without `PINCER_TEST_POSTGRES`, or when the server refuses.
    #[allow(clippy::expect_used)]
    pub async fn create(prefix: &str) -> Option<Self> {
        let Ok(url) = std::env::var("PINCER_TEST_POSTGRES") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PINCER_TEST_POSTGRES is required under CI (.ci/run starts a cluster)"
            );
            eprintln!("SKIP postgres (PINCER_TEST_POSTGRES not set; not CI)");
            return None;
        };
        let schema = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("the test Postgres accepts connections");
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}"
            ))
            .await
            .expect("a fresh schema");
        Some(Self {
            url,
            schema,
            client,
        })
    }

    /// The server URL with the schema as `search_path` (what a Pincer config points at).
    pub fn url_with_schema(&self) -> String {
        format!("{}?options=-csearch_path%3D{}", self.url, self.schema)
    }
}
