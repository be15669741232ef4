//! Channel state — pairing, invites, task links, the outbox, positions — on every backend.

use pincer_store::{APPROVED_TEXT, ChannelError, NewOutgoing, PairingRequest, TaskLink};
use pincer_types::TaskId;

use super::{Db, at, conformance};

/// Characters in a pairing code.
const CODE_LEN: usize = 8;

conformance!(pairing_limits_expiry_and_approval, |db| {
    let s = db.open().await;
    let PairingRequest::Code { code: a, new: true } = s
        .request_pairing("telegram", "1", "ann", at(0))
        .await
        .unwrap()
    else {
        panic!("a new code")
    };
    // Asking again: the same code, marked as not new (not repeated to the sender).
    assert_eq!(
        s.request_pairing("telegram", "1", "ann", at(5))
            .await
            .unwrap(),
        PairingRequest::Code {
            code: a.clone(),
            new: false
        }
    );
    s.request_pairing("telegram", "2", "bob", at(6))
        .await
        .unwrap();
    s.request_pairing("telegram", "3", "cy", at(7))
        .await
        .unwrap();
    assert_eq!(
        s.request_pairing("telegram", "4", "dee", at(8))
            .await
            .unwrap(),
        PairingRequest::TooMany
    );
    assert_eq!(s.pairings("telegram", at(9)).await.unwrap().len(), 3);
    assert!(!s.is_paired("telegram", "1").await.unwrap());
    let p = s
        .approve_pairing("telegram", &a.to_lowercase(), at(10))
        .await
        .unwrap();
    assert_eq!(p.sender, "1");
    assert!(s.is_paired("telegram", "1").await.unwrap());
    // The sender is told, through the outbox, in the same transaction.
    let told = s.pending_out("telegram", 10).await.unwrap();
    assert_eq!(
        (told[0].chat.as_str(), told[0].text.as_str()),
        ("1", APPROVED_TEXT)
    );
    assert!(matches!(
        s.approve_pairing("telegram", &a, at(11)).await,
        Err(ChannelError::NoSuchCode(_))
    ));
    // An hour later the others have expired and new senders can ask.
    let later = at(3601 + 7);
    assert!(s.pairings("telegram", later).await.unwrap().is_empty());
    assert!(matches!(
        s.request_pairing("telegram", "4", "dee", later)
            .await
            .unwrap(),
        PairingRequest::Code { new: true, .. }
    ));
    let expired = s.pairings("telegram", later).await.unwrap();
    assert_eq!(expired.len(), 1);
    // Other channels are separate.
    assert!(!s.is_paired("discord", "1").await.unwrap());
});

conformance!(the_outbox_keeps_order_and_answers_forget_their_link, |db| {
    let s = db.open().await;
    let t = TaskId::new();
    let link = TaskLink {
        chat: "42".into(),
        user: "7".into(),
        reply_to: Some("9".into()),
    };
    s.link_task(t, "telegram", &link).await.unwrap();
    assert_eq!(s.linked_tasks("telegram").await.unwrap(), vec![t]);
    assert_eq!(s.task_link(t).await.unwrap(), Some(link));
    let a = s
        .enqueue(NewOutgoing::text("telegram", "42", "first"), at(0))
        .await
        .unwrap();
    let b = s
        .enqueue(
            NewOutgoing {
                markup: Some("{}"),
                reply_to: Some("7"),
                answers: Some(t),
                ..NewOutgoing::text("telegram", "42", "answer")
            },
            at(1),
        )
        .await
        .unwrap();
    assert!(s.linked_tasks("telegram").await.unwrap().is_empty());
    let out = s.pending_out("telegram", 10).await.unwrap();
    assert_eq!(out.iter().map(|o| o.id).collect::<Vec<_>>(), [a, b]);
    assert_eq!(
        (out[1].reply_to.as_deref(), out[1].parts_sent),
        (Some("7"), 0)
    );
    // Delivery progress of a long message survives (a resend starts after it).
    s.progress_out(b, 2).await.unwrap();
    assert_eq!(
        s.pending_out("telegram", 10).await.unwrap()[1].parts_sent,
        2
    );
    s.done_out(a, None, at(2)).await.unwrap();
    s.done_out(b, Some("chat not found"), at(3)).await.unwrap();
    assert!(s.pending_out("telegram", 10).await.unwrap().is_empty());
});

conformance!(an_invite_links_a_sender_once, |db| {
    let s = db.open().await;
    let code = s
        .create_invite("alice", chrono::Duration::days(7), at(0))
        .await
        .unwrap();
    assert_eq!(code.len(), 2 * CODE_LEN);
    let user = s
        .redeem_invite(&code.to_lowercase(), "telegram", "42", "Alice", at(1))
        .await
        .unwrap();
    assert_eq!(user, "alice");
    assert!(s.is_paired("telegram", "42").await.unwrap());
    // Single use.
    assert!(matches!(
        s.redeem_invite(&code, "telegram", "43", "Mallory", at(2))
            .await,
        Err(ChannelError::NoSuchCode(_))
    ));
    assert!(!s.is_paired("telegram", "43").await.unwrap());
    // Expired invites do nothing.
    let old = s
        .create_invite("bob", chrono::Duration::seconds(10), at(0))
        .await
        .unwrap();
    assert!(
        s.redeem_invite(&old, "telegram", "44", "Bob", at(11))
            .await
            .is_err()
    );
});

conformance!(offsets_survive_a_reopen, |db| {
    {
        let s = db.open().await;
        assert_eq!(s.offset("telegram").await.unwrap(), None);
        s.set_offset("telegram", 41).await.unwrap();
        s.set_offset("telegram", 42).await.unwrap();
    }
    let s = db.open().await;
    assert_eq!(s.offset("telegram").await.unwrap(), Some(42));
});
