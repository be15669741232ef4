//! Installed skills, on every backend: recorded, approved exactly as scanned, moved only from
//! the states a move names.

use pincer_store::{SkillRecord, SkillState};

use super::{Db, at, conformance};

fn skill(name: &str, sha: &str, state: SkillState) -> SkillRecord {
    SkillRecord {
        name: name.into(),
        source: "/src/notes".into(),
        version: "1.0".into(),
        description: "Keeps notes tidy".into(),
        manifest: serde_json::json!({"tools": ["fs.read"]}),
        verdict: "approve".into(),
        findings: serde_json::json!([]),
        seen_sha256: sha.into(),
        approved_sha256: None,
        approved_by: None,
        approved_at: None,
        state,
        state_reason: None,
        installed_at: at(0),
        updated_at: at(0),
    }
}

conformance!(skills_are_approved_as_scanned_and_moved_by_rule, |db| {
    let s = db.open().await;
    s.skill_record(&skill("notes", "aa", SkillState::Pending))
        .await
        .unwrap();
    s.skill_record(&skill("evil", "bb", SkillState::Blocked))
        .await
        .unwrap();
    // Approval binds to the content last seen; a blocked skill cannot be approved.
    assert!(
        !s.skill_approve("notes", "zz", "owner", at(1))
            .await
            .unwrap()
    );
    assert!(!s.skill_approve("evil", "bb", "owner", at(1)).await.unwrap());
    assert!(
        s.skill_approve("notes", "aa", "owner", at(2))
            .await
            .unwrap()
    );
    let n = s.skill("notes").await.unwrap().unwrap();
    assert_eq!(n.state, SkillState::Enabled);
    assert_eq!(n.approved_sha256.as_deref(), Some("aa"));
    assert_eq!(n.approved_by.as_deref(), Some("owner"));
    assert_eq!(n.approved_at, Some(at(2)));
    assert_eq!(n.manifest["tools"][0], "fs.read");
    // Moves happen only from the named states.
    assert!(
        !s.skill_transition(
            "notes",
            &[SkillState::Disabled],
            SkillState::Enabled,
            None,
            at(3)
        )
        .await
        .unwrap()
    );
    assert!(
        s.skill_transition(
            "notes",
            &[SkillState::Enabled],
            SkillState::Quarantined,
            Some("SKILL.md changed"),
            at(4)
        )
        .await
        .unwrap()
    );
    let n = s.skill("notes").await.unwrap().unwrap();
    assert_eq!(
        (n.state, n.state_reason.as_deref(), n.updated_at),
        (SkillState::Quarantined, Some("SKILL.md changed"), at(4))
    );
    // Re-recording keeps the first install time.
    let mut again = skill("notes", "cc", SkillState::Pending);
    again.installed_at = at(9);
    again.updated_at = at(9);
    s.skill_record(&again).await.unwrap();
    let n = s.skill("notes").await.unwrap().unwrap();
    assert_eq!((n.installed_at, n.seen_sha256.as_str()), (at(0), "cc"));
    let names: Vec<String> = s
        .skills()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert_eq!(names, ["evil", "notes"]);
    assert!(s.skill_remove("evil").await.unwrap());
    assert!(!s.skill_remove("evil").await.unwrap());
    assert!(s.skill("evil").await.unwrap().is_none());
});
