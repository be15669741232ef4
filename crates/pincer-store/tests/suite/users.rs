//! Governance state (users, roles, bypass, emergency controls, ownership), on every backend.

use pincer_store::{ApprovalStatus, GovernanceError, NewApproval, NewTask, TaskKind, TokenError};
use pincer_types::{AgentId, RiskTier, Role, Scope, SessionKey, TaskStatus};

use super::{Db, at, conformance};

fn task(owner: Option<&str>, session: &str) -> NewTask {
    let agent: AgentId = "main".parse().unwrap();
    NewTask {
        kind: TaskKind::Message,
        session_key: SessionKey::for_peer(&agent, "api", session).unwrap(),
        agent,
        input: "hi".into(),
        idempotency_key: None,
        deadline: None,
        owner: owner.map(str::to_owned),
    }
}

fn approval(task: pincer_types::TaskId, tier: RiskTier) -> NewApproval {
    NewApproval {
        task: Some(task),
        tool: "fs.write".into(),
        digest: "cd".repeat(32),
        tier,
        reason: "needs approval".into(),
        detail: serde_json::json!({}),
        requester: "main".into(),
        expires_at: at(3600),
        taint_sources: Vec::new(),
    }
}

conformance!(users_roles_and_the_last_owner, |db| {
    let s = db.open().await;
    // The installation starts with its owner (the local CLI's principal).
    let users = s.users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].name.as_str(), users[0].role),
        ("owner", Role::Owner)
    );
    let alice = s.add_user("alice", Role::Member, at(0)).await.unwrap();
    assert_eq!(alice.role, Role::Member);
    assert!(alice.enabled() && !alice.bypass);
    assert!(matches!(
        s.add_user("alice", Role::Admin, at(1)).await,
        Err(GovernanceError::Exists(_))
    ));
    assert!(matches!(
        s.add_user("bad name", Role::Admin, at(1)).await,
        Err(GovernanceError::Invalid(_))
    ));
    assert!(matches!(
        s.set_role("nobody", Role::Admin).await,
        Err(GovernanceError::NotFound(_))
    ));
    // The last enabled owner can be neither demoted nor disabled…
    assert!(matches!(
        s.set_role("owner", Role::Admin).await,
        Err(GovernanceError::LastOwner(_))
    ));
    assert!(matches!(
        s.disable_user("owner", at(2)).await,
        Err(GovernanceError::LastOwner(_))
    ));
    // …until there is another.
    s.set_role("alice", Role::Owner).await.unwrap();
    assert_eq!(
        s.set_role("owner", Role::Admin).await.unwrap().role,
        Role::Admin
    );
    assert!(matches!(
        s.disable_user("alice", at(3)).await,
        Err(GovernanceError::LastOwner(_))
    ));
    // Another handle sees the same state.
    drop(s);
    let s = db.open().await;
    assert_eq!(s.user("alice").await.unwrap().unwrap().role, Role::Owner);
    assert_eq!(s.user("owner").await.unwrap().unwrap().role, Role::Admin);
});

conformance!(tokens_belong_to_users_and_are_capped_by_their_role, |db| {
    let s = db.open().await;
    s.add_user("bob", Role::Member, at(0)).await.unwrap();
    // A member's token cannot hold admin or audit scopes.
    let e = s
        .create_token("bob-admin", "bob", &[Scope::Admin], None, at(0))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, TokenError::Invalid(m) if m.contains("member")),
        "{e}"
    );
    assert!(
        s.create_token("x", "nobody", &[Scope::TasksRead], None, at(0))
            .await
            .is_err()
    );
    let (secret, info) = s
        .create_token(
            "bob-ci",
            "bob",
            &[Scope::TasksRead, Scope::TasksWrite],
            None,
            at(0),
        )
        .await
        .unwrap();
    assert_eq!((info.user.as_str(), info.role), ("bob", Some(Role::Member)));
    let who = s.authenticate(&secret, at(1)).await.unwrap().unwrap();
    assert_eq!(
        who.effective_scopes(),
        vec![Scope::TasksRead, Scope::TasksWrite]
    );
    // An operator's audit token loses `audit:read` the moment they are made a member.
    s.add_user("olga", Role::Operator, at(0)).await.unwrap();
    let (op, _) = s
        .create_token(
            "olga-audit",
            "olga",
            &[Scope::AuditRead, Scope::TasksRead],
            None,
            at(0),
        )
        .await
        .unwrap();
    s.set_role("olga", Role::Member).await.unwrap();
    let who = s.authenticate(&op, at(2)).await.unwrap().unwrap();
    assert_eq!(who.effective_scopes(), vec![Scope::TasksRead]);
    // Disabling a user stops their tokens at once; enabling brings them back.
    s.disable_user("bob", at(3)).await.unwrap();
    assert!(s.authenticate(&secret, at(4)).await.unwrap().is_none());
    assert!(
        s.create_token("bob-2", "bob", &[Scope::TasksRead], None, at(4))
            .await
            .is_err()
    );
    s.enable_user("bob").await.unwrap();
    assert!(s.authenticate(&secret, at(5)).await.unwrap().is_some());
});

conformance!(
    disabling_a_user_denies_their_approvals_and_cancels_their_tasks,
    |db| {
        let s = db.open().await;
        s.add_user("carol", Role::Member, at(0)).await.unwrap();
        let (mine, _) = s.submit(task(Some("carol"), "c"), at(1)).await.unwrap();
        let (theirs, _) = s.submit(task(Some("owner"), "o"), at(1)).await.unwrap();
        let a = s
            .request_approval(approval(mine.id, RiskTier::L1Mutating), at(2))
            .await
            .unwrap();
        let b = s
            .request_approval(approval(theirs.id, RiskTier::L1Mutating), at(2))
            .await
            .unwrap();
        // Ownership filters.
        assert_eq!(s.tasks_of(Some("carol"), None, 10).await.unwrap().len(), 1);
        assert_eq!(s.tasks_of(None, None, 10).await.unwrap().len(), 2);
        let carol_apr = s.approvals_of(Some("carol"), None, 10).await.unwrap();
        assert_eq!(carol_apr.len(), 1);
        assert_eq!(carol_apr[0].id, a.id);
        assert_eq!(s.owner_load("carol", at(0)).await.unwrap(), (1, 1));
        assert_eq!(s.owner_load("carol", at(2)).await.unwrap(), (0, 1));
        let d = s.disable_user("carol", at(3)).await.unwrap();
        assert_eq!(d.approvals_denied, vec![a.id.clone()]);
        assert_eq!(d.tasks_canceled, vec![mine.id]);
        assert!(!d.user.enabled());
        assert_eq!(
            s.task(mine.id).await.unwrap().unwrap().status,
            TaskStatus::Canceled
        );
        assert_eq!(
            s.approval(&a.id).await.unwrap().unwrap().status,
            ApprovalStatus::Denied
        );
        // Nobody else's work is touched.
        assert_eq!(
            s.task(theirs.id).await.unwrap().unwrap().status,
            TaskStatus::Queued
        );
        assert_eq!(
            s.approval(&b.id).await.unwrap().unwrap().status,
            ApprovalStatus::Pending
        );
    }
);

conformance!(bypass_toggles_give_way_to_the_org_lock, |db| {
    let s = db.open().await;
    s.add_user("dan", Role::Member, at(0)).await.unwrap();
    s.add_user("eve", Role::Operator, at(0)).await.unwrap();
    assert!(s.set_bypass("dan", true).await.unwrap().bypass);
    assert!(s.set_bypass("eve", true).await.unwrap().bypass);
    // Locking revokes every active bypass in the same step, and reports whose.
    let revoked = s.set_bypass_lock(true, "user:owner", at(1)).await.unwrap();
    assert_eq!(revoked, vec!["dan".to_owned(), "eve".to_owned()]);
    assert!(!s.user("dan").await.unwrap().unwrap().bypass);
    let c = s.controls().await.unwrap();
    assert_eq!(
        c.bypass_locked.as_ref().map(|c| c.by.as_str()),
        Some("user:owner")
    );
    // While locked nobody can switch it on again (another process included).
    let other = db.open().await;
    assert!(matches!(
        other.set_bypass("dan", true).await,
        Err(GovernanceError::BypassLocked)
    ));
    assert!(!other.set_bypass("dan", false).await.unwrap().bypass);
    s.set_bypass_lock(false, "user:owner", at(2)).await.unwrap();
    assert!(other.set_bypass("dan", true).await.unwrap().bypass);
    // Racing a lock against toggles from two handles ends consistent: locked, all off.
    let (a, b) = (s.clone(), other.clone());
    let on = tokio::spawn(async move {
        for _ in 0..10 {
            let _ = b.set_bypass("eve", true).await;
        }
    });
    let lock = tokio::spawn(async move { a.set_bypass_lock(true, "user:owner", at(3)).await });
    on.await.unwrap();
    lock.await.unwrap().unwrap();
    assert!(s.controls().await.unwrap().bypass_locked.is_some());
    // Toggles that won before the lock were cleared by it; later ones were refused.
    assert!(!s.user("eve").await.unwrap().unwrap().bypass);
    assert!(!s.user("dan").await.unwrap().unwrap().bypass);
    // A disabled user cannot switch bypass on.
    s.set_bypass_lock(false, "user:owner", at(4)).await.unwrap();
    s.disable_user("dan", at(5)).await.unwrap();
    assert!(matches!(
        s.set_bypass("dan", true).await,
        Err(GovernanceError::Disabled(_))
    ));
});

conformance!(emergency_controls_pause_cancel_risky_and_rotate, |db| {
    let s = db.open().await;
    assert!(s.controls().await.unwrap().paused.is_none());
    let c = s.set_paused(true, "user:owner", at(1)).await.unwrap();
    assert_eq!(c.paused.as_ref().map(|p| p.at), Some(at(1)));
    // Held across handles (processes) and restarts.
    drop(s);
    let s = db.open().await;
    assert!(s.controls().await.unwrap().paused.is_some());
    assert!(
        s.set_paused(false, "user:owner", at(2))
            .await
            .unwrap()
            .paused
            .is_none()
    );
    // cancel-risky: a task that ran an L2 action and one waiting on an L3 approval go; an
    // L1 task and a finished L2 task stay.
    let (ran_l2, _) = s.submit(task(Some("owner"), "a"), at(3)).await.unwrap();
    let (waits_l3, _) = s.submit(task(Some("owner"), "b"), at(3)).await.unwrap();
    let (only_l1, _) = s.submit(task(Some("owner"), "c"), at(3)).await.unwrap();
    s.raise_risk(ran_l2.id, RiskTier::L2Destructive)
        .await
        .unwrap();
    s.raise_risk(ran_l2.id, RiskTier::L1Mutating).await.unwrap();
    s.raise_risk(only_l1.id, RiskTier::L1Mutating)
        .await
        .unwrap();
    s.request_approval(approval(waits_l3.id, RiskTier::L3Privileged), at(4))
        .await
        .unwrap();
    let canceled = s
        .cancel_risky(RiskTier::L2Destructive, "emergency", at(5))
        .await
        .unwrap();
    let mut ids: Vec<_> = canceled.iter().map(|t| t.id).collect();
    ids.sort();
    let mut want = vec![ran_l2.id, waits_l3.id];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(
        s.task(only_l1.id).await.unwrap().unwrap().status,
        TaskStatus::Queued
    );
    assert_eq!(
        s.task(ran_l2.id).await.unwrap().unwrap().error.as_deref(),
        Some("emergency")
    );
    // rotate: every token revoked, pairing codes and invites gone, hook secrets recorded.
    s.create_token("a", "owner", &[Scope::Admin], None, at(6))
        .await
        .unwrap();
    let (t2, _) = s
        .create_token("b", "owner", &[Scope::TasksRead], None, at(6))
        .await
        .unwrap();
    s.request_pairing("telegram", "42", "Zed", at(6))
        .await
        .unwrap();
    let invite = s
        .create_invite("owner", chrono::Duration::hours(1), at(6))
        .await
        .unwrap();
    let r = s
        .rotate_credentials(&["f00d".into()], "user:owner", at(7))
        .await
        .unwrap();
    assert_eq!(
        (r.tokens_revoked, r.pairings_dropped, r.invites_expired),
        (2, 1, 1)
    );
    assert!(s.authenticate(&t2, at(8)).await.unwrap().is_none());
    assert!(s.pairings("telegram", at(8)).await.unwrap().is_empty());
    assert!(
        s.redeem_invite(&invite, "telegram", "43", "Yan", at(8))
            .await
            .is_err()
    );
    assert_eq!(
        s.controls().await.unwrap().revoked_hook_secrets,
        vec!["f00d".to_owned()]
    );
});

conformance!(chat_identities_link_to_users, |db| {
    let s = db.open().await;
    s.add_user("fay", Role::Operator, at(0)).await.unwrap();
    assert!(s.user_of_sender("telegram", "7").await.unwrap().is_none());
    s.link("fay", "telegram", "7", at(1)).await.unwrap();
    assert!(s.is_paired("telegram", "7").await.unwrap());
    assert_eq!(
        s.user_of_sender("telegram", "7")
            .await
            .unwrap()
            .unwrap()
            .name,
        "fay"
    );
    assert_eq!(s.identities("fay").await.unwrap().len(), 1);
    assert!(matches!(
        s.link("nobody", "telegram", "8", at(1)).await,
        Err(GovernanceError::NotFound(_))
    ));
    // An invite for a user links the account that redeems it.
    let code = s
        .create_invite("fay", chrono::Duration::hours(1), at(2))
        .await
        .unwrap();
    s.redeem_invite(&code, "telegram", "9", "Fay2", at(3))
        .await
        .unwrap();
    assert_eq!(
        s.user_of_sender("telegram", "9")
            .await
            .unwrap()
            .unwrap()
            .name,
        "fay"
    );
    assert!(s.unlink("telegram", "7").await.unwrap());
    assert!(!s.unlink("telegram", "7").await.unwrap());
    assert!(!s.is_paired("telegram", "7").await.unwrap());
});
