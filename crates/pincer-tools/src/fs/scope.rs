//! [`FsScope`]: the one place file tools touch the filesystem.
//!
//! Every path is resolved one component at a time with `openat(…, O_NOFOLLOW)` from a directory
//! handle opened once on the root, so no string prefix check is involved and nothing a model
//! does can make a lookup leave the root:
//!
//! - `..`, absolute paths, NUL bytes and over-long paths are refused before any system call;
//! - symlinks are never followed, at any depth (a symlink swapped in after a check is caught
//!   because the lookup itself refuses to follow it);
//! - only regular files are read or written; FIFOs, sockets and devices are refused without being
//!   opened, and the opened file is checked again (`fstat`) to be the one that was inspected;
//! - files with more than one hard link are refused (a hard link can point outside);
//! - writes go to a temporary file in the same directory and are renamed over the target, so they
//!   never write through an existing link;
//! - protected paths (config, secrets, state, audit, skills, instruction files) are resolved
//!   afresh for every operation and identified by device and inode and by (parent directory,
//!   name) ([`super::guard`]), so no spelling of a path, no hard link, no workspace placement and
//!   no replacement of the file by the operator reaches them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use super::FsError;
use super::guard::{Guard, Id, ProtectedPath, Protection};
use super::path::{components, join};

/// One root: the workspace or a named read-only root.
#[derive(Debug)]
struct Root {
    path: PathBuf,
    fd: OwnedFd,
    writable: bool,
}

/// Name of the writable root.
pub const WORKSPACE: &str = "workspace";

/// An entry returned by [`FsScope::list`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Path relative to the root.
    pub path: String,
    /// `file`, `dir`, `symlink` or `other`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Size in bytes (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// What [`FsScope::list`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Entries in walk order (sorted by name per directory).
    pub entries: Vec<Entry>,
    /// Whether the entry limit cut the listing short.
    pub truncated: bool,
}

/// A regular file's content as read.
#[derive(Debug, Clone)]
pub struct FileData {
    /// The bytes read (at most the cap).
    pub bytes: Vec<u8>,
    /// The file's size.
    pub size: u64,
    /// Whether the file was larger than the cap.
    pub truncated: bool,
}

/// How [`FsScope::write`] may treat an existing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// The file must not exist.
    Create,
    /// The file must exist with exactly this content hash (what the approver saw).
    Replace {
        /// sha256 of the current content, hex.
        sha256: String,
    },
}

/// The filesystem an agent's tools can see.
#[derive(Debug)]
pub struct FsScope {
    roots: BTreeMap<String, Root>,
    /// Resolved again for every operation ([`Guard::build`]).
    protected: Vec<ProtectedPath>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Most bytes read to check that a file is still what the approver saw.
const MAX_HASHED: u64 = 64 * 1024 * 1024;

/// A file path resolved beneath a root: its parent directory handle and final name.
struct Target<'p> {
    dir: OwnedFd,
    name: &'p str,
    shown: String,
}

fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn io(e: Errno, what: &str) -> FsError {
    FsError::Io(format!("{what}: {}", std::io::Error::from(e)))
}

fn kind_of(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// sha256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl FsScope {
    /// Opens the workspace (writable) and named read-only roots, and keeps the protected paths,
    /// which every operation resolves again at the moment of access.
    ///
    /// # Errors
    /// [`FsError::Io`] when a root cannot be opened as a directory.
    pub fn open(
        workspace: &Path,
        read_roots: &BTreeMap<String, PathBuf>,
        protected: &[ProtectedPath],
    ) -> Result<Self, FsError> {
        let mut roots = BTreeMap::new();
        roots.insert(WORKSPACE.to_owned(), Self::open_root(workspace, true)?);
        for (name, path) in read_roots {
            roots.insert(name.clone(), Self::open_root(path, false)?);
        }
        Ok(Self {
            roots,
            protected: protected.to_vec(),
        })
    }

    fn open_root(path: &Path, writable: bool) -> Result<Root, FsError> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(e, &format!("opening root {}", path.display())))?;
        Ok(Root {
            path: path.to_owned(),
            fd,
            writable,
        })
    }

    /// The protected set as it is now.
    fn guard(&self) -> Guard {
        Guard::build(&self.protected)
    }

    /// Walks up from a root to `/` by handle: does the root lie inside something protected?
    fn inside<'g>(
        root: &Root,
        guard: &'g Guard,
    ) -> Result<Option<&'g (String, Protection)>, FsError> {
        let mut cur = rustix::fs::openat(&root.fd, ".", dir_flags(), Mode::empty())
            .map_err(|e| io(e, "opening root"))?;
        for _ in 0..4096 {
            let id = Id::of(&rustix::fs::fstat(&cur).map_err(|e| io(e, "stat"))?);
            if let Some(v) = guard.rule(id) {
                return Ok(Some(v));
            }
            let parent = rustix::fs::openat(&cur, "..", dir_flags(), Mode::empty())
                .map_err(|e| io(e, "opening parent"))?;
            let pid = Id::of(&rustix::fs::fstat(&parent).map_err(|e| io(e, "stat"))?);
            if pid == id {
                break;
            }
            cur = parent;
        }
        Ok(None)
    }

    /// Names of the roots (`workspace` first is not guaranteed; sorted).
    pub fn root_names(&self) -> impl Iterator<Item = &str> {
        self.roots.keys().map(String::as_str)
    }

    /// The host path of a root, for display.
    pub fn root_path(&self, root: &str) -> Option<&Path> {
        self.roots.get(root).map(|r| r.path.as_path())
    }

    fn root(&self, name: &str, write: bool, guard: &Guard) -> Result<&Root, FsError> {
        let r = self.roots.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.root_names().collect();
            FsError::UnknownRoot(format!(
                "no root named `{name}` (this agent has: {})",
                known.join(", ")
            ))
        })?;
        if write && !r.writable {
            return Err(FsError::ReadOnly(name.to_owned()));
        }
        match Self::inside(r, guard)? {
            Some((label, Protection::NoAccess)) => Err(FsError::Protected(format!(
                "root `{name}` lies inside {label}; tools cannot access it"
            ))),
            Some((label, Protection::NoWrite)) if write => Err(FsError::Protected(format!(
                "root `{name}` lies inside {label}; tools cannot change it"
            ))),
            _ => Ok(r),
        }
    }

    /// Opens the directory `comps` under `root` (each step `O_NOFOLLOW`, each step checked
    /// against the protected set). With `create`, missing directories are made (0755).
    fn walk(
        &self,
        g: &Guard,
        root: &Root,
        comps: &[&str],
        write: bool,
        create: bool,
    ) -> Result<OwnedFd, FsError> {
        let mut cur = rustix::fs::openat(&root.fd, ".", dir_flags(), Mode::empty())
            .map_err(|e| io(e, "opening root"))?;
        let id = Id::of(&rustix::fs::fstat(&cur).map_err(|e| io(e, "stat"))?);
        g.check(id, write, "the root")?;
        let mut pid = id;
        for (i, c) in comps.iter().enumerate() {
            let shown = join(&comps[..=i]);
            g.check_name(pid, c, write, &format!("`{shown}`"))?;
            let next = match rustix::fs::openat(&cur, *c, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, *c, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io(e, &format!("creating `{shown}`"))),
                    }
                    rustix::fs::openat(&cur, *c, dir_flags(), Mode::empty())
                        .map_err(|e| self.classify(&cur, c, &shown, e))?
                }
                Err(e) => return Err(self.classify(&cur, c, &shown, e)),
            };
            let id = Id::of(&rustix::fs::fstat(&next).map_err(|e| io(e, "stat"))?);
            g.check(id, write, &format!("`{shown}`"))?;
            pid = id;
            cur = next;
        }
        Ok(cur)
    }

    /// Turns a failed directory lookup into a clear error.
    fn classify(&self, dir: &OwnedFd, name: &str, shown: &str, e: Errno) -> FsError {
        match e {
            Errno::NOENT => FsError::NotFound(shown.to_owned()),
            Errno::NOTDIR | Errno::LOOP => {
                match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if kind_of(&st) == FileType::Symlink => {
                        FsError::Symlink(shown.to_owned())
                    }
                    _ => FsError::NotADirectory(shown.to_owned()),
                }
            }
            e => io(e, shown),
        }
    }

    /// Resolves a file path under `root` to its parent directory handle and final name.
    /// With `create`, missing parent directories are made. The root itself is not a file.
    fn target<'p>(
        &self,
        g: &Guard,
        root: &Root,
        path: &'p str,
        write: bool,
        create: bool,
    ) -> Result<Target<'p>, FsError> {
        let mut comps = components(path)?;
        let shown = join(&comps);
        let name = comps
            .pop()
            .ok_or_else(|| FsError::IsADirectory(".".into()))?;
        let dir = self.walk(g, root, &comps, write, create)?;
        Ok(Target { dir, name, shown })
    }

    /// Reads an inspected file through a checked open, refusing more than `cap` bytes.
    fn read_capped(&self, t: &Target<'_>, st: &Stat, cap: u64) -> Result<Vec<u8>, FsError> {
        let mut bytes = Vec::new();
        self.open_checked(&t.dir, t.name, &t.shown, st)?
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| FsError::Io(format!("{}: {e}", t.shown)))?;
        if bytes.len() as u64 > cap {
            return Err(FsError::TooLarge(format!(
                "`{}` is larger than {cap} bytes",
                t.shown
            )));
        }
        Ok(bytes)
    }

    /// Fails with [`FsError::Changed`] unless the inspected file still hashes to `sha256`.
    fn expect_content(&self, t: &Target<'_>, st: &Stat, sha256: &str) -> Result<(), FsError> {
        if sha256_hex(&self.read_capped(t, st, MAX_HASHED)?) == sha256 {
            Ok(())
        } else {
            Err(FsError::Changed(t.shown.clone()))
        }
    }

    /// Inspects the final component without following it, enforcing regular-file, link-count
    /// and protection rules. Returns `None` when it does not exist.
    fn inspect(
        &self,
        g: &Guard,
        dir: &OwnedFd,
        name: &str,
        shown: &str,
        write: bool,
    ) -> Result<Option<Stat>, FsError> {
        let pid = Id::of(&rustix::fs::fstat(dir).map_err(|e| io(e, "stat"))?);
        g.check_name(pid, name, write, &format!("`{shown}`"))?;
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io(e, shown)),
        };
        g.check(Id::of(&st), write, &format!("`{shown}`"))?;
        match kind_of(&st) {
            FileType::RegularFile => {}
            FileType::Symlink => return Err(FsError::Symlink(shown.to_owned())),
            FileType::Directory => return Err(FsError::IsADirectory(shown.to_owned())),
            _ => return Err(FsError::NotRegular(shown.to_owned())),
        }
        if st.st_nlink > 1 {
            return Err(FsError::Hardlinked(shown.to_owned()));
        }
        Ok(Some(st))
    }

    /// Opens a regular file for reading and checks it is the one inspected.
    fn open_checked(
        &self,
        dir: &OwnedFd,
        name: &str,
        shown: &str,
        st: &Stat,
    ) -> Result<File, FsError> {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::LOOP => FsError::Symlink(shown.to_owned()),
            Errno::NOENT => FsError::NotFound(shown.to_owned()),
            e => io(e, shown),
        })?;
        let now = rustix::fs::fstat(&fd).map_err(|e| io(e, shown))?;
        if Id::of(&now) != Id::of(st) || kind_of(&now) != FileType::RegularFile || now.st_nlink > 1
        {
            return Err(FsError::Raced(shown.to_owned()));
        }
        Ok(File::from(fd))
    }

    /// Resolves a file for reading without opening it: every confinement rule applies.
    ///
    /// # Errors
    /// [`FsError`] on any confinement violation or a missing file.
    pub fn check_read(&self, root: &str, path: &str) -> Result<String, FsError> {
        let g = self.guard();
        let t = self.target(&g, self.root(root, false, &g)?, path, false, false)?;
        self.inspect(&g, &t.dir, t.name, &t.shown, false)?
            .ok_or_else(|| FsError::NotFound(t.shown.clone()))?;
        Ok(t.shown)
    }

    /// Resolves a directory for listing or searching: every confinement rule applies.
    ///
    /// # Errors
    /// [`FsError`] on any confinement violation or a missing directory.
    pub fn check_dir(&self, root: &str, path: &str) -> Result<String, FsError> {
        let g = self.guard();
        let r = self.root(root, false, &g)?;
        let comps = components(path)?;
        self.walk(&g, r, &comps, false, false)?;
        Ok(join(&comps))
    }

    /// Reads up to `cap` bytes of a regular file.
    ///
    /// # Errors
    /// [`FsError`] on any confinement violation, a missing file or an I/O error.
    pub fn read(&self, root: &str, path: &str, cap: u64) -> Result<FileData, FsError> {
        self.reader(root)?.read(path, cap)
    }

    /// A reader for many files of one root (a search), resolving the protected set and checking
    /// the root once. Use it for one batch of reads, not across tool calls.
    ///
    /// # Errors
    /// [`FsError`] when the root is unknown or protected.
    pub fn reader(&self, root: &str) -> Result<Reader<'_>, FsError> {
        let guard = self.guard();
        let root = self.root(root, false, &guard)?;
        Ok(Reader {
            scope: self,
            guard,
            root,
        })
    }

    fn read_in(&self, g: &Guard, r: &Root, path: &str, cap: u64) -> Result<FileData, FsError> {
        let t = self.target(g, r, path, false, false)?;
        let st = self
            .inspect(g, &t.dir, t.name, &t.shown, false)?
            .ok_or_else(|| FsError::NotFound(t.shown.clone()))?;
        let file = self.open_checked(&t.dir, t.name, &t.shown, &st)?;
        let size = u64::try_from(st.st_size).unwrap_or(0);
        let mut bytes = Vec::with_capacity(usize::try_from(size.min(cap)).unwrap_or(0));
        file.take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| FsError::Io(format!("{}: {e}", t.shown)))?;
        let truncated = bytes.len() as u64 > cap;
        bytes.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
        Ok(FileData {
            bytes,
            size,
            truncated,
        })
    }

    /// Whether a workspace file exists, and its content and sha256 when it does. Applies the
    /// same rules as a write (so a protected or special file is refused here, at plan time).
    ///
    /// # Errors
    /// [`FsError`] on any confinement violation, or a file larger than `cap`.
    pub fn probe_for_write(
        &self,
        path: &str,
        cap: u64,
    ) -> Result<Option<(String, Vec<u8>)>, FsError> {
        let g = self.guard();
        let t = match self.target(&g, self.root(WORKSPACE, true, &g)?, path, true, false) {
            Ok(t) => t,
            // Missing parents are created at write time.
            Err(FsError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(st) = self.inspect(&g, &t.dir, t.name, &t.shown, true)? else {
            return Ok(None);
        };
        let bytes = self.read_capped(&t, &st, cap)?;
        Ok(Some((sha256_hex(&bytes), bytes)))
    }

    /// Writes `content` to a workspace file atomically (temp file + rename), creating parent
    /// directories. `mode` states what the approver saw; if the file changed since, nothing is
    /// written.
    ///
    /// # Errors
    /// [`FsError`] on any confinement violation, a changed file or an I/O error.
    pub fn write(&self, path: &str, content: &[u8], mode: &WriteMode) -> Result<(), FsError> {
        let g = self.guard();
        let t = self.target(&g, self.root(WORKSPACE, true, &g)?, path, true, true)?;
        let (dir, name, shown) = (&t.dir, t.name, &t.shown);
        let existing = self.inspect(&g, dir, name, shown, true)?;
        let perm = match (&existing, mode) {
            (None, WriteMode::Create) => 0o644,
            (Some(_), WriteMode::Create) => return Err(FsError::Exists(t.shown)),
            (None, WriteMode::Replace { .. }) => return Err(FsError::Changed(t.shown)),
            (Some(st), WriteMode::Replace { sha256 }) => {
                self.expect_content(&t, st, sha256)?;
                st.st_mode & 0o777
            }
        };
        let tmp = format!(
            ".pincer-tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let fd = rustix::fs::openat(
            dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(perm),
        )
        .map_err(|e| io(e, &format!("creating a temporary file next to `{shown}`")))?;
        let cleanup = |e: FsError| {
            let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
            e
        };
        let mut file = File::from(fd);
        file.write_all(content)
            .and_then(|()| file.sync_all())
            .map_err(|e| cleanup(FsError::Io(format!("{shown}: {e}"))))?;
        let renamed = match mode {
            WriteMode::Create => {
                rustix::fs::renameat_with(dir, tmp.as_str(), dir, name, RenameFlags::NOREPLACE)
            }
            WriteMode::Replace { .. } => rustix::fs::renameat(dir, tmp.as_str(), dir, name),
        };
        renamed.map_err(|e| {
            cleanup(match e {
                Errno::EXIST => FsError::Exists(shown.clone()),
                e => io(e, shown),
            })
        })?;
        sync_dir(dir);
        Ok(())
    }

    /// Deletes a workspace file whose content still hashes to `sha256`.
    ///
    /// # Errors
    /// [`FsError`] on any confinement violation, a changed file or an I/O error.
    pub fn remove(&self, path: &str, sha256: &str) -> Result<(), FsError> {
        let g = self.guard();
        let t = self.target(&g, self.root(WORKSPACE, true, &g)?, path, true, false)?;
        let st = self
            .inspect(&g, &t.dir, t.name, &t.shown, true)?
            .ok_or_else(|| FsError::Changed(t.shown.clone()))?;
        self.expect_content(&t, &st, sha256)?;
        rustix::fs::unlinkat(&t.dir, t.name, AtFlags::empty()).map_err(|e| io(e, &t.shown))?;
        sync_dir(&t.dir);
        Ok(())
    }

    /// Lists a directory down to `depth` levels, at most `limit` entries. Symlinks are shown,
    /// never followed; protected no-access directories are not entered.
    ///
    /// # Errors
    /// [`FsError`] on any confinement violation or I/O error.
    pub fn list(
        &self,
        root: &str,
        path: &str,
        depth: u32,
        limit: usize,
    ) -> Result<Listing, FsError> {
        let g = self.guard();
        let r = self.root(root, false, &g)?;
        let comps = components(path)?;
        let dir = self.walk(&g, r, &comps, false, false)?;
        let prefix = if comps.is_empty() {
            String::new()
        } else {
            format!("{}/", join(&comps))
        };
        let mut out = Listing::default();
        self.list_into(&g, &dir, &prefix, depth.max(1), limit, &mut out)?;
        Ok(out)
    }

    fn list_into(
        &self,
        g: &Guard,
        dir: &OwnedFd,
        prefix: &str,
        depth: u32,
        limit: usize,
        out: &mut Listing,
    ) -> Result<(), FsError> {
        let readable = rustix::fs::openat(
            dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(e, prefix))?;
        let mut names: BTreeSet<String> = BTreeSet::new();
        for entry in rustix::fs::Dir::read_from(&readable).map_err(|e| io(e, prefix))? {
            let entry = entry.map_err(|e| io(e, prefix))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." && !name.starts_with(".pincer-tmp-") {
                names.insert(name);
            }
        }
        for name in names {
            if out.entries.len() >= limit {
                out.truncated = true;
                return Ok(());
            }
            let Ok(st) = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let hidden = matches!(g.rule(Id::of(&st)), Some((_, Protection::NoAccess)));
            if hidden {
                continue;
            }
            let (kind, size) = match kind_of(&st) {
                FileType::RegularFile => ("file", u64::try_from(st.st_size).ok()),
                FileType::Directory => ("dir", None),
                FileType::Symlink => ("symlink", None),
                _ => ("other", None),
            };
            let path = format!("{prefix}{name}");
            out.entries.push(Entry {
                path: path.clone(),
                kind,
                size,
            });
            if kind == "dir" && depth > 1 && name != ".git" {
                let Ok(sub) = rustix::fs::openat(dir, name.as_str(), dir_flags(), Mode::empty())
                else {
                    continue;
                };
                self.list_into(g, &sub, &format!("{path}/"), depth - 1, limit, out)?;
                if out.truncated {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Opens a directory under a root for a search walk, returning its host path. The walk
    /// itself only lists names; every file it reports is opened again through [`Self::read`].
    ///
    /// # Errors
    /// [`FsError`] on any confinement violation.
    pub fn search_base(&self, root: &str, path: &str) -> Result<PathBuf, FsError> {
        let g = self.guard();
        let r = self.root(root, false, &g)?;
        let comps = components(path)?;
        // Resolving proves the directory exists beneath the root via handles.
        let _ = self.walk(&g, r, &comps, false, false)?;
        Ok(if comps.is_empty() {
            r.path.clone()
        } else {
            r.path.join(join(&comps))
        })
    }
}

/// Reads files of one root under one resolution of the protected set ([`FsScope::reader`]).
#[derive(Debug)]
pub struct Reader<'s> {
    scope: &'s FsScope,
    guard: Guard,
    root: &'s Root,
}

impl Reader<'_> {
    /// Reads up to `cap` bytes of a regular file, like [`FsScope::read`].
    ///
    /// # Errors
    /// [`FsError`] on any confinement violation, a missing file or an I/O error.
    pub fn read(&self, path: &str, cap: u64) -> Result<FileData, FsError> {
        self.scope.read_in(&self.guard, self.root, path, cap)
    }
}

fn sync_dir(dir: &OwnedFd) {
    if let Ok(d) = rustix::fs::openat(
        dir.as_fd(),
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        let _ = rustix::fs::fsync(&d);
    }
}
