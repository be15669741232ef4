//! Is the bot addressed? Mentions found by Telegram's entities, matched the way Telegram matches
//! usernames (case-insensitively), and removed from the text the agent sees.

use super::api::MessageEntity;

/// Finds mentions of the bot — `mention` entities matching `@username` case-insensitively (as
/// Telegram treats usernames) and `text_mention`s of its id — and removes them from the text.
/// Without entities (some clients and forwarded text), a whole word equal to `@username` in any
/// case counts; a longer name that merely contains it does not.
pub(super) fn strip_mentions(
    text: &str,
    entities: &[MessageEntity],
    (username, id): &(String, i64),
) -> (String, bool) {
    if username.is_empty() && entities.is_empty() {
        return (text.to_owned(), false);
    }
    let mention = format!("@{username}");
    let utf16: Vec<u16> = text.encode_utf16().collect();
    let mut ranges: Vec<(usize, usize)> = entities
        .iter()
        .filter(|e| {
            let end = e.offset.saturating_add(e.length).min(utf16.len());
            let slice = utf16.get(e.offset.min(end)..end).unwrap_or_default();
            match e.kind.as_str() {
                "mention" => {
                    !username.is_empty()
                        && String::from_utf16_lossy(slice).eq_ignore_ascii_case(&mention)
                }
                "text_mention" => e.user.as_ref().is_some_and(|u| u.id == *id),
                _ => false,
            }
        })
        .map(|e| (e.offset, e.offset.saturating_add(e.length).min(utf16.len())))
        .collect();
    if entities.is_empty() && !username.is_empty() {
        let mut pos = 0;
        for word in text.split_inclusive(char::is_whitespace) {
            let bare = word
                .trim_end()
                .trim_end_matches([',', '.', ':', '!', '?', ';']);
            if bare.eq_ignore_ascii_case(&mention) {
                let len = bare.encode_utf16().count();
                ranges.push((pos, pos + len));
            }
            pos += word.encode_utf16().count();
        }
    }
    if ranges.is_empty() {
        return (text.to_owned(), false);
    }
    ranges.sort_unstable();
    let mut kept = Vec::with_capacity(utf16.len());
    let mut at = 0;
    for (start, end) in ranges {
        if start >= at {
            kept.extend_from_slice(utf16.get(at..start).unwrap_or_default());
        }
        at = at.max(end);
    }
    kept.extend_from_slice(utf16.get(at..).unwrap_or_default());
    (String::from_utf16_lossy(&kept), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mention(offset: usize, length: usize) -> MessageEntity {
        MessageEntity {
            kind: "mention".into(),
            offset,
            length,
            user: None,
        }
    }

    #[test]
    fn mentions_are_matched_by_entity_case_insensitively_and_removed() {
        let me = ("Pincer_Test_Bot".to_owned(), 99);
        let (t, m) = strip_mentions("@pincer_test_bot hi", &[mention(0, 16)], &me);
        assert!(m);
        assert_eq!(t.trim(), "hi");
        // Another bot whose name contains ours is not a mention of us.
        let (_, m) = strip_mentions("@Pincer_Test_Bot2 hi", &[mention(0, 17)], &me);
        assert!(!m);
        // UTF-16 offsets: an emoji before the mention.
        let text = "😀 @PINCER_TEST_BOT go";
        let (t, m) = strip_mentions(text, &[mention(3, 16)], &me);
        assert!(m);
        assert_eq!(t, "😀  go");
        // No entities: a whole word in any case, not a substring.
        assert!(strip_mentions("hey @pincer_test_bot, go", &[], &me).1);
        assert!(!strip_mentions("mail@pincer_test_bot.example", &[], &me).1);
        // A text_mention of the bot's id.
        let tm = MessageEntity {
            kind: "text_mention".into(),
            offset: 0,
            length: 3,
            user: Some(super::super::api::User {
                id: 99,
                is_bot: true,
                first_name: "P".into(),
                username: None,
            }),
        };
        assert!(strip_mentions("bot do it", &[tm], &me).1);
    }
}
