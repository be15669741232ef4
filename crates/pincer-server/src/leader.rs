//! Singletons across nodes: the scheduler tick and each chat channel (polling, answers, the
//! outbox sender) run on one `pincer serve` at a time when several share a database.
//!
//! Each node has a random id. [`singleton`] takes the role's lease ([`LeaderStore::lead`]),
//! runs the component under a child cancellation token while it keeps the lease (renewed every
//! third of [`TTL`]), and stops it at once when a renewal fails — a node that cannot reach the
//! database must assume someone else leads. A node that dies stops renewing; another takes over
//! within one [`TTL`]. On a clean stop the node resigns, so the hand-over is immediate. With one
//! process (SQLite, the default) it simply always leads.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pincer_store::Backend;
use tokio_util::sync::CancellationToken;

/// How long a lease lasts without renewal.
pub const TTL: Duration = Duration::from_secs(15);

/// A fresh node id for this process.
pub fn node_id() -> String {
    format!("node-{}", pincer_types::TaskId::new())
}

/// Runs `component` whenever this node leads `role`, until `stop`.
pub async fn singleton<F, Fut>(
    store: Arc<dyn Backend>,
    role: &'static str,
    node: String,
    stop: CancellationToken,
    component: F,
) where
    F: Fn(CancellationToken) -> Fut + Send,
    Fut: Future<Output = ()> + Send,
{
    let renew = TTL / 3;
    while !stop.is_cancelled() {
        match store.lead(role, &node, Utc::now(), TTL).await {
            Ok(true) => {}
            Ok(false) => {
                tokio::select! {
                    () = tokio::time::sleep(renew) => {}
                    () = stop.cancelled() => break,
                }
                continue;
            }
            Err(e) => {
                eprintln!("pincer serve: leadership of {role}: {e}");
                tokio::select! {
                    () = tokio::time::sleep(renew) => {}
                    () = stop.cancelled() => break,
                }
                continue;
            }
        }
        let term = stop.child_token();
        let running = component(term.clone());
        tokio::pin!(running);
        loop {
            tokio::select! {
                () = &mut running => break,
                () = tokio::time::sleep(renew) => {
                    let kept = matches!(store.lead(role, &node, Utc::now(), TTL).await, Ok(true));
                    if !kept {
                        eprintln!("pincer serve: lost the lead of {role}; stopping it here");
                        term.cancel();
                        (&mut running).await;
                        break;
                    }
                }
            }
        }
    }
    let _ = store.resign(role, &node).await;
}
