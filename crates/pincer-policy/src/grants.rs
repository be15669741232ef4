//! What an agent is granted: its profile, plus `allow`, minus `deny` (deny always wins).
//!
//! Groups name tools that may not exist yet in this build (e.g. `shell.exec` before the sandbox
//! lands); the registry offers only tools that exist, so naming a future tool grants nothing.

use std::collections::BTreeSet;

use pincer_config::{ToolGroup, ToolProfile, ToolSelector};
use pincer_types::ToolName;

/// Tools in a group, by canonical name.
pub fn group_tools(group: ToolGroup) -> &'static [&'static str] {
    match group {
        ToolGroup::Fs => &[
            "fs.read",
            "fs.list",
            "fs.write",
            "fs.edit",
            "apply_patch",
            "code.search",
        ],
        ToolGroup::Runtime => &["shell.exec", "process"],
        ToolGroup::Web => &["http.fetch", "web.search"],
        ToolGroup::Browser => &[
            "browser.navigate",
            "browser.snapshot",
            "browser.click",
            "browser.type",
            "browser.screenshot",
            "browser.close",
        ],
        ToolGroup::Memory => &[
            "memory.search",
            "memory.get",
            "memory.append",
            "memory.forget",
        ],
        ToolGroup::Messaging => &["message.send"],
        ToolGroup::Automation => &["schedule.add", "schedule.list", "schedule.remove"],
    }
}

/// The selectors a profile stands for.
pub fn profile_selectors(profile: ToolProfile) -> Vec<ToolSelector> {
    // Every profile may tell the time and read installed skills (offered only when one is
    // installed and approved; what a skill may then do is its manifest ∩ these grants).
    let mut v: Vec<ToolSelector> = ["time.now", crate::skills::SKILL_READ]
        .iter()
        .filter_map(|t| t.parse().ok())
        .map(ToolSelector::Tool)
        .collect();
    let groups: &[ToolGroup] = match profile {
        ToolProfile::Minimal => &[],
        ToolProfile::Coding => &[ToolGroup::Fs, ToolGroup::Runtime, ToolGroup::Memory],
        ToolProfile::Messaging => &[ToolGroup::Messaging, ToolGroup::Memory],
        ToolProfile::Full => &ToolGroup::ALL,
    };
    v.extend(groups.iter().copied().map(ToolSelector::Group));
    v
}

fn expand(sel: &ToolSelector, mcp: &[(String, ToolName)], out: &mut BTreeSet<ToolName>) {
    match sel {
        ToolSelector::Tool(t) => {
            out.insert(t.clone());
        }
        ToolSelector::Group(g) => {
            out.extend(group_tools(*g).iter().filter_map(|n| n.parse().ok()));
        }
        ToolSelector::McpServer(server) => {
            out.extend(
                mcp.iter()
                    .filter(|(s, _)| s == server)
                    .map(|(_, t)| t.clone()),
            );
        }
    }
}

/// The granted tool names: `profile ∪ allow ∖ deny`.
pub fn resolve_grants(
    profile: ToolProfile,
    allow: &[ToolSelector],
    deny: &[ToolSelector],
) -> BTreeSet<ToolName> {
    resolve_grants_with(profile, allow, deny, &[])
}

/// [`resolve_grants`] where `group:mcp:<server>` stands for `mcp`'s tools of that server (the
/// approved, available ones, as `(server, tool)`). No profile includes MCP tools: each server is
/// granted by name.
pub fn resolve_grants_with(
    profile: ToolProfile,
    allow: &[ToolSelector],
    deny: &[ToolSelector],
    mcp: &[(String, ToolName)],
) -> BTreeSet<ToolName> {
    let mut granted = BTreeSet::new();
    for sel in profile_selectors(profile).iter().chain(allow) {
        expand(sel, mcp, &mut granted);
    }
    let mut denied = BTreeSet::new();
    for sel in deny {
        expand(sel, mcp, &mut denied);
    }
    granted.retain(|t| !denied.contains(t));
    granted
}

#[cfg(test)]
mod mcp_tests {
    use super::*;

    #[test]
    fn mcp_servers_are_granted_by_name_and_denied_by_tool() {
        let t = |s: &str| -> ToolName { s.parse().unwrap() };
        let mcp = vec![
            ("files".to_owned(), t("mcp.files.read")),
            ("files".to_owned(), t("mcp.files.write")),
            ("other".to_owned(), t("mcp.other.x")),
        ];
        let sel = |s: &str| -> ToolSelector { s.parse().unwrap() };
        let g = resolve_grants_with(
            ToolProfile::Full,
            &[sel("group:mcp:files")],
            &[sel("mcp.files.write")],
            &mcp,
        );
        assert!(g.contains(&t("mcp.files.read")));
        assert!(!g.contains(&t("mcp.files.write")));
        assert!(
            !g.contains(&t("mcp.other.x")),
            "the full profile includes no MCP server"
        );
        assert!("group:mcp:Bad".parse::<ToolSelector>().is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> ToolSelector {
        s.parse().unwrap()
    }
    fn names(set: &BTreeSet<ToolName>) -> Vec<&str> {
        set.iter().map(ToolName::as_str).collect()
    }

    #[test]
    fn minimal_is_the_clock_and_reading_skills() {
        assert_eq!(
            names(&resolve_grants(ToolProfile::Minimal, &[], &[])),
            ["skill.read", "time.now"]
        );
    }

    #[test]
    fn coding_has_files_and_deny_wins_over_profile_and_allow() {
        let g = resolve_grants(
            ToolProfile::Coding,
            &[sel("fs.write"), sel("group:web")],
            &[sel("fs.write"), sel("group:web")],
        );
        assert!(g.contains(&"fs.read".parse().unwrap()));
        assert!(!g.contains(&"fs.write".parse().unwrap()));
        assert!(!g.contains(&"web.fetch".parse().unwrap()));
    }

    #[test]
    fn allow_adds_to_a_profile_and_full_covers_every_group() {
        let g = resolve_grants(ToolProfile::Minimal, &[sel("group:fs")], &[]);
        assert!(g.contains(&"apply_patch".parse().unwrap()));
        let full = resolve_grants(ToolProfile::Full, &[], &[]);
        for group in ToolGroup::ALL {
            for t in group_tools(group) {
                assert!(full.contains(&t.parse().unwrap()), "{t}");
            }
        }
    }

    #[test]
    fn unknown_groups_are_config_errors() {
        assert!("group:nope".parse::<ToolSelector>().is_err());
        assert!("group:fs".parse::<ToolSelector>().is_ok());
    }
}
