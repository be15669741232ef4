//! API tokens, on every backend.

use pincer_store::{TOKEN_PREFIX, TokenError};
use pincer_types::Scope;

use super::{Db, at, conformance};

conformance!(tokens_are_shown_once_stored_hashed_and_checked, |db| {
    let s = db.open().await;
    let (secret, info) = s
        .create_token(
            "ci",
            "owner",
            &[Scope::TasksRead, Scope::TasksWrite],
            None,
            at(0),
        )
        .await
        .unwrap();
    assert!(
        secret.starts_with(TOKEN_PREFIX) && secret.len() == 47,
        "{secret}"
    );
    assert_eq!(info.scopes, vec![Scope::TasksRead, Scope::TasksWrite]);
    // Another handle (a restart, or another node) authenticates it.
    drop(s);
    let s = db.open().await;
    let who = s.authenticate(&secret, at(1)).await.unwrap().unwrap();
    assert_eq!(who.name, "ci");
    assert_eq!(who.last_used_at, Some(at(1)));
    // Recorded at most once a minute: a use 30 s later reads it, one 60 s after writes it.
    let who = s.authenticate(&secret, at(31)).await.unwrap().unwrap();
    assert_eq!(who.last_used_at, Some(at(1)));
    let who = s.authenticate(&secret, at(61)).await.unwrap().unwrap();
    assert_eq!(who.last_used_at, Some(at(61)));
    let listed = s.tokens().await.unwrap();
    assert_eq!(
        listed[0].last_used_at,
        Some(at(61)),
        "stored, not only returned"
    );
    // Wrong, malformed or near-miss secrets fail.
    let mut near = secret.clone();
    near.pop();
    near.push('A');
    for bad in [near.as_str(), "", "pnc_", "Bearer x", &secret[4..]] {
        if bad != secret {
            assert!(s.authenticate(bad, at(2)).await.unwrap().is_none(), "{bad}");
        }
    }
    assert!(matches!(
        s.create_token("ci", "owner", &[Scope::Admin], None, at(3))
            .await,
        Err(TokenError::Exists(_))
    ));
    assert!(
        s.create_token("bad name", "owner", &[Scope::Admin], None, at(3))
            .await
            .is_err()
    );
    assert!(
        s.create_token("empty", "owner", &[], None, at(3))
            .await
            .is_err()
    );
});

conformance!(revoke_rotate_and_expiry, |db| {
    let s = db.open().await;
    let (old, _) = s
        .create_token("a", "owner", &[Scope::Admin], None, at(0))
        .await
        .unwrap();
    let (new, _) = s.rotate_token("a", at(1)).await.unwrap();
    assert_ne!(old, new);
    assert!(s.authenticate(&old, at(2)).await.unwrap().is_none());
    assert!(s.authenticate(&new, at(2)).await.unwrap().is_some());
    s.revoke_token("a", at(3)).await.unwrap();
    assert!(s.authenticate(&new, at(4)).await.unwrap().is_none());
    assert!(matches!(
        s.revoke_token("nope", at(4)).await,
        Err(TokenError::NotFound(_))
    ));
    assert!(matches!(
        s.rotate_token("nope", at(4)).await,
        Err(TokenError::NotFound(_))
    ));
    let (t, _) = s
        .create_token("short", "owner", &[Scope::AuditRead], Some(at(10)), at(0))
        .await
        .unwrap();
    assert!(s.authenticate(&t, at(9)).await.unwrap().is_some());
    assert!(s.authenticate(&t, at(10)).await.unwrap().is_none());
    let names: Vec<String> = s
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a", "short"]);
});
