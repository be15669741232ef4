//! The protected set: which files and directories no tool may write (or read), decided by
//! identity at the moment of access.
//!
//! A [`Guard`] is rebuilt from the configured [`ProtectedPath`]s for every filesystem operation,
//! so a protected file that the operator replaces (`pincer config set`, an editor, `sed -i` — all
//! save by rename, i.e. a new inode) is protected again at the next access. Two identities are
//! checked on every path component:
//!
//! - the component's own device and inode (catches every spelling and the root lying inside a
//!   protected directory);
//! - the pair (parent directory's device and inode, name), which does not change when the file is
//!   replaced by rename, so even a replacement made between the rebuild and the access is caught.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rustix::fs::Stat;

use super::FsError;

/// Identity of a file: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Id {
    dev: u64,
    ino: u64,
}

impl Id {
    pub(super) fn of(st: &Stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// How strongly a path is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Tools may read it but never write, replace, move or delete it (or anything under it).
    NoWrite,
    /// Tools may not read or write it (or anything under it).
    NoAccess,
}

/// What a [`ProtectedPath`] covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Covers {
    /// The path itself and everything under it.
    Itself,
    /// Every entry of the directory (and everything under them) except the one with this name;
    /// the directory itself is not protected. Entries created later are covered too. Used for
    /// `agents/`: an agent's tools may reach its own agent directory's editable files, never
    /// another agent's.
    EntriesExcept(String),
}

/// A path file tools must not touch, with a label for error messages.
#[derive(Debug, Clone)]
pub struct ProtectedPath {
    /// The path (need not exist yet).
    pub path: PathBuf,
    /// What it is, e.g. `Pincer configuration`.
    pub label: String,
    /// Read-only or no access at all.
    pub protection: Protection,
    /// The path itself, or the entries of a directory.
    pub covers: Covers,
}

impl ProtectedPath {
    /// Protects `path` and everything under it.
    pub fn new(path: impl Into<PathBuf>, label: impl Into<String>, protection: Protection) -> Self {
        Self {
            path: path.into(),
            label: label.into(),
            protection,
            covers: Covers::Itself,
        }
    }
}

type Rule = (String, Protection);

/// The protected set resolved to identities, valid for one operation.
#[derive(Debug, Default)]
pub(super) struct Guard {
    /// Protected files and directories that exist now.
    ids: BTreeMap<Id, Rule>,
    /// Protected names, by their parent directory (existing or not).
    names: BTreeMap<(Id, String), Rule>,
    /// Directories whose entries are protected, with the one name exempted.
    entries: BTreeMap<Id, (String, Rule)>,
}

impl Guard {
    /// Resolves `paths` now. Paths whose parent does not exist cannot be reached and are skipped.
    pub(super) fn build<'p>(paths: &'p [ProtectedPath]) -> Self {
        let mut g = Self::default();
        // Most protected paths share a parent (the home, the agent's directory): stat each
        // parent once.
        let mut parents: Vec<(&'p std::path::Path, Option<Id>)> = Vec::new();
        let mut parent_id = |dir: &'p std::path::Path| -> Option<Id> {
            if let Some((_, id)) = parents.iter().find(|(d, _)| *d == dir) {
                return *id;
            }
            let id = rustix::fs::stat(dir).ok().map(|st| Id::of(&st));
            parents.push((dir, id));
            id
        };
        for p in paths {
            let rule = (p.label.clone(), p.protection);
            match &p.covers {
                Covers::Itself => {
                    if let Ok(st) = rustix::fs::lstat(&p.path) {
                        g.ids.insert(Id::of(&st), rule.clone());
                    }
                    if let (Some(parent), Some(name)) = (p.path.parent(), p.path.file_name())
                        && let Some(pid) = parent_id(parent)
                    {
                        g.names
                            .insert((pid, name.to_string_lossy().into_owned()), rule);
                    }
                }
                Covers::EntriesExcept(own) => {
                    let Ok(st) = rustix::fs::stat(&p.path) else {
                        continue;
                    };
                    // Existing entries by identity too, so a root inside one is caught.
                    if let Ok(rd) = std::fs::read_dir(&p.path) {
                        for e in rd.flatten() {
                            if e.file_name().to_string_lossy() != own.as_str()
                                && let Ok(est) = rustix::fs::lstat(e.path())
                            {
                                g.ids.insert(Id::of(&est), rule.clone());
                            }
                        }
                    }
                    g.entries.insert(Id::of(&st), (own.clone(), rule));
                }
            }
        }
        g
    }

    /// The rule protecting the file or directory with identity `id`, if any.
    pub(super) fn rule(&self, id: Id) -> Option<&Rule> {
        self.ids.get(&id)
    }

    /// Refuses an existing file or directory, by its identity.
    pub(super) fn check(&self, id: Id, write: bool, what: &str) -> Result<(), FsError> {
        refuse(self.ids.get(&id), write, what, "change")
    }

    /// Refuses a name in a directory (existing or about to be created), by the directory's
    /// identity.
    pub(super) fn check_name(
        &self,
        parent: Id,
        name: &str,
        write: bool,
        what: &str,
    ) -> Result<(), FsError> {
        let by_name = self.names.get(&(parent, name.to_owned()));
        let by_dir = self
            .entries
            .get(&parent)
            .and_then(|(own, rule)| (own != name).then_some(rule));
        refuse(by_name.or(by_dir), write, what, "change or create")
    }
}

fn refuse(rule: Option<&Rule>, write: bool, what: &str, verb: &str) -> Result<(), FsError> {
    match rule {
        Some((label, Protection::NoAccess)) => Err(FsError::Protected(format!(
            "{what} is {label}; tools cannot access it"
        ))),
        Some((label, Protection::NoWrite)) if write => Err(FsError::Protected(format!(
            "{what} is {label}; tools cannot {verb} it"
        ))),
        _ => Ok(()),
    }
}
