//! Web admin page sessions, on every backend.

use pincer_types::{Role, Scope};

use super::{Db, at, conformance};

conformance!(ui_sessions_follow_their_token_and_user, |db| {
    let s = db.open().await;
    s.add_user("ops", Role::Operator, at(0)).await.unwrap();
    s.create_token(
        "ops-t",
        "ops",
        &[Scope::TasksRead, Scope::AuditRead],
        None,
        at(0),
    )
    .await
    .unwrap();
    s.create_ui_session("h1", "ops-t", "csrf1", at(1), at(100))
        .await
        .unwrap();
    let u = s.ui_session("h1", at(2)).await.unwrap().unwrap();
    assert_eq!(
        (u.user.as_str(), u.role, u.csrf.as_str()),
        ("ops", Role::Operator, "csrf1")
    );
    assert_eq!(u.scopes, vec![Scope::TasksRead, Scope::AuditRead]);
    // Unknown ids and expired sessions are gone.
    assert!(s.ui_session("nope", at(2)).await.unwrap().is_none());
    assert!(s.ui_session("h1", at(100)).await.unwrap().is_none());
    // Another handle (node) sees it; a demotion caps it at once; disabling ends it.
    let other = db.open().await;
    s.set_role("ops", Role::Member).await.unwrap();
    let u = other.ui_session("h1", at(3)).await.unwrap().unwrap();
    assert_eq!(u.scopes, vec![Scope::TasksRead]);
    s.disable_user("ops", at(4)).await.unwrap();
    assert!(other.ui_session("h1", at(5)).await.unwrap().is_none());
    s.enable_user("ops").await.unwrap();
    assert!(other.ui_session("h1", at(6)).await.unwrap().is_some());
    // Revoking the token ends every session made with it; logout ends one.
    s.create_ui_session("h2", "ops-t", "csrf2", at(6), at(100))
        .await
        .unwrap();
    s.end_ui_session("h2", at(7)).await.unwrap();
    assert!(s.ui_session("h2", at(7)).await.unwrap().is_none());
    s.revoke_token("ops-t", at(8)).await.unwrap();
    assert!(s.ui_session("h1", at(9)).await.unwrap().is_none());
    // A one-time link is no session, works once, and not after its expiry.
    s.create_token("link-t", "owner", &[Scope::Admin], None, at(9))
        .await
        .unwrap();
    s.create_ui_session("l1", "link-t", "", at(9), at(20))
        .await
        .unwrap();
    assert!(s.ui_session("l1", at(10)).await.unwrap().is_none());
    assert_eq!(
        s.take_ui_link("l1", at(10)).await.unwrap().as_deref(),
        Some("link-t")
    );
    assert!(s.take_ui_link("l1", at(11)).await.unwrap().is_none());
    s.create_ui_session("l2", "link-t", "", at(9), at(20))
        .await
        .unwrap();
    assert!(s.take_ui_link("l2", at(21)).await.unwrap().is_none());
});
