//! Leadership leases, on every backend.

use std::time::Duration;

use super::{Db, at, conformance};

const TTL: Duration = Duration::from_secs(15);

conformance!(one_leader_per_role_until_its_lease_runs_out, |db| {
    let s = db.open().await;
    assert!(s.lead("automation", "a", at(0), TTL).await.unwrap());
    // Another node is refused while the lease is live; the leader renews.
    assert!(!s.lead("automation", "b", at(5), TTL).await.unwrap());
    assert!(s.lead("automation", "a", at(10), TTL).await.unwrap());
    assert!(!s.lead("automation", "b", at(24), TTL).await.unwrap());
    // Roles are independent.
    assert!(s.lead("channel:telegram", "b", at(24), TTL).await.unwrap());
    // The leader stops renewing (it died): after its lease another node takes over, and the
    // old leader cannot take it back while the new lease is live.
    assert!(s.lead("automation", "b", at(25), TTL).await.unwrap());
    assert!(!s.lead("automation", "a", at(26), TTL).await.unwrap());
    // A clean stop hands over at once; resigning a role one does not hold changes nothing.
    s.resign("automation", "a").await.unwrap();
    assert!(!s.lead("automation", "a", at(27), TTL).await.unwrap());
    s.resign("automation", "b").await.unwrap();
    assert!(s.lead("automation", "a", at(28), TTL).await.unwrap());
});

conformance!(racing_nodes_get_one_leader, |db| {
    let s = db.open().await;
    let mut handles = Vec::new();
    for n in 0..8 {
        let s = std::sync::Arc::clone(&s);
        handles.push(tokio::spawn(async move {
            s.lead("race", &format!("n{n}"), at(0), TTL).await.unwrap()
        }));
    }
    let mut leaders = 0;
    for h in handles {
        if h.await.unwrap() {
            leaders += 1;
        }
    }
    assert_eq!(leaders, 1);
});
