//! The memory search index on every backend.

use pincer_store::{Note, query_terms};

use super::{Db, conformance};

fn note(source: &str, line: u32, text: &str) -> Note {
    Note {
        source: source.into(),
        line,
        date: source
            .strip_suffix(".md")
            .filter(|d| d.len() == 10)
            .map(str::to_owned),
        text: text.into(),
    }
}

conformance!(notes_are_replaced_by_source_and_ranked_by_keyword, |db| {
    let s = db.open().await;
    s.replace_notes(
        "main",
        "MEMORY.md",
        "1:10:aa",
        &[
            note("MEMORY.md", 1, "The user's code word is marlin"),
            note("MEMORY.md", 2, "Prefers short answers"),
        ],
        None,
    )
    .await
    .unwrap();
    s.replace_notes(
        "main",
        "2026-12-04.md",
        "2:20:bb",
        &[note(
            "2026-12-04.md",
            3,
            "Garden plan: tomatoes and marlin-shaped beds, marlin",
        )],
        Some(&[vec![0.5, -1.0, 2.0]]),
    )
    .await
    .unwrap();
    s.replace_notes(
        "other",
        "MEMORY.md",
        "x",
        &[note("MEMORY.md", 1, "marlin too")],
        None,
    )
    .await
    .unwrap();
    let hits = s
        .search_notes("main", &query_terms("Marlin, code?"), 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(
        hits[0].note.source, "MEMORY.md",
        "more query terms match: {hits:?}"
    );
    assert!(hits[0].score > hits[1].score);
    assert!(
        hits.iter().all(|h| h.note.text != "marlin too"),
        "another agent's note"
    );
    assert_eq!(
        s.note_sources("main").await.unwrap(),
        vec![
            ("2026-12-04.md".to_owned(), "2:20:bb".to_owned()),
            ("MEMORY.md".to_owned(), "1:10:aa".to_owned())
        ]
    );
    let v = s.note_vectors("main").await.unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].1, vec![0.5, -1.0, 2.0]);
    assert_eq!(v[0].0.date.as_deref(), Some("2026-12-04"));
    // Replacing a source drops its old notes; removing one drops everything of it.
    s.replace_notes(
        "main",
        "MEMORY.md",
        "1:11:cc",
        &[note("MEMORY.md", 1, "Prefers long answers")],
        None,
    )
    .await
    .unwrap();
    let hits = s
        .search_notes("main", &query_terms("code"), 10)
        .await
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    s.remove_notes("main", "2026-12-04.md").await.unwrap();
    assert!(
        s.search_notes("main", &query_terms("garden"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.note_sources("main").await.unwrap().len(), 1);
    // Query syntax cannot be injected.
    assert!(
        s.search_notes("main", &query_terms("\" OR 1=1 --"), 10)
            .await
            .is_ok()
    );
});
