//! [`EventRelay`] on Postgres: `NOTIFY` out, a dedicated `LISTEN` connection in, on a channel
//! named after the schema (`pincer_events:<md5 of the schema name>`, always a short plain
//! identifier), so deployments (or test runs) sharing one database in different schemas never see
//! each other's events.

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{PgStore, PgTls, db};
use crate::StoreError;
use crate::relay::EventRelay;

/// The notification channel's prefix; the md5 of the schema name follows it.
const CHANNEL: &str = "pincer_events:";
/// Payloads buffered for a slow consumer before newer ones are dropped.
const BUFFER: usize = 1024;

#[async_trait]
impl EventRelay for PgStore {
    async fn relay_send(&self, payload: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "SELECT pg_notify($1 || md5(current_schema()), $2)",
                &[&CHANNEL, &payload],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn relay_subscribe(&self) -> Result<Option<mpsc::Receiver<String>>, StoreError> {
        let (tx, rx) = mpsc::channel(BUFFER);
        // The client must live as long as the connection listens: it is handed to the task
        // that drives the connection once `LISTEN` is in place.
        let (keep, kept) = tokio::sync::oneshot::channel::<tokio_postgres::Client>();
        let client = match &self.tls {
            PgTls::Off => {
                let (client, conn) = self.config.connect(NoTls).await.map_err(|e| db(&e))?;
                tokio::spawn(listen(conn, tx, kept));
                client
            }
            PgTls::On(m) => {
                let (client, conn) = self.config.connect(m.clone()).await.map_err(|e| db(&e))?;
                tokio::spawn(listen(conn, tx, kept));
                client
            }
        };
        let channel: String = client
            .query_one("SELECT $1 || md5(current_schema())", &[&CHANNEL])
            .await
            .map_err(|e| db(&e))?
            .get(0);
        client
            .batch_execute(&format!("LISTEN \"{channel}\""))
            .await
            .map_err(|e| db(&e))?;
        let _ = keep.send(client);
        Ok(Some(rx))
    }
}

/// Drives the `LISTEN` connection, forwarding notifications until the receiver goes away or the
/// connection breaks.
async fn listen<S, T>(
    mut conn: tokio_postgres::Connection<S, T>,
    tx: mpsc::Sender<String>,
    kept: tokio::sync::oneshot::Receiver<tokio_postgres::Client>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut kept = Some(kept);
    let mut _client = None;
    while let Some(msg) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
        if let Some(k) = kept.as_mut()
            && let Ok(c) = k.try_recv()
        {
            _client = Some(c);
            kept = None;
        }
        match msg {
            Ok(AsyncMessage::Notification(n)) => {
                if tx.is_closed() {
                    break;
                }
                let _ = tx.try_send(n.payload().to_owned());
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}
