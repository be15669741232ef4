//! A skill's files, read safely and hashed: regular files and directories only (a symbolic
//! link, device, FIFO or socket anywhere refuses the whole skill), every file opened without
//! following links and sized before it is read, with caps on count, size and depth. The tree's
//! sha256 covers every file's relative path and content; it is what an operator approves.
//! A `.git` directory at the top (a clone's) is not part of the skill.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::SkillError;

/// Most files in a skill.
pub const MAX_FILES: usize = 256;
/// Largest file.
pub const MAX_FILE: u64 = 4 * 1024 * 1024;
/// Largest skill.
pub const MAX_TOTAL: u64 = 16 * 1024 * 1024;
/// Deepest directory.
pub const MAX_DEPTH: usize = 8;

/// One file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path relative to the skill's directory, `/`-separated.
    pub rel: String,
    /// Its bytes.
    pub content: Vec<u8>,
    /// Whether its mode has an execute bit.
    pub executable: bool,
    /// sha256 of the content, hex.
    pub sha256: String,
}

/// A skill's files, by relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The files, sorted by path.
    pub files: Vec<TreeFile>,
    /// sha256 over every (path, content hash), hex.
    pub sha256: String,
}

impl Tree {
    /// A file by relative path.
    pub fn get(&self, rel: &str) -> Option<&TreeFile> {
        self.files.iter().find(|f| f.rel == rel)
    }

    /// Each file's hash, by path.
    pub fn hashes(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|f| (f.rel.clone(), f.sha256.clone()))
            .collect()
    }

    /// Builds a tree from files (hashing them).
    pub fn from_files(mut files: Vec<TreeFile>) -> Self {
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        let mut h = Sha256::new();
        for f in &files {
            h.update(f.rel.as_bytes());
            h.update(b"\0");
            h.update(f.sha256.as_bytes());
            h.update(b"\n");
        }
        Self {
            sha256: hex::encode(h.finalize()),
            files,
        }
    }
}

/// A file's entry for [`Tree::from_files`].
pub fn file(rel: &str, content: Vec<u8>, executable: bool) -> TreeFile {
    TreeFile {
        rel: rel.to_owned(),
        sha256: hex::encode(Sha256::digest(&content)),
        content,
        executable,
    }
}

/// Reads the skill directory `root`.
///
/// # Errors
/// [`SkillError::Tree`] naming the file and what is wrong with it; [`SkillError::Io`].
pub fn read(root: &Path) -> Result<Tree, SkillError> {
    let meta = std::fs::symlink_metadata(root)
        .map_err(|e| SkillError::Tree(format!("{}: {e}", root.display())))?;
    if !meta.is_dir() {
        return Err(SkillError::Tree(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let mut files = Vec::new();
    let mut total = 0u64;
    walk(root, "", 0, &mut files, &mut total)?;
    Ok(Tree::from_files(files))
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    files: &mut Vec<TreeFile>,
    total: &mut u64,
) -> Result<(), SkillError> {
    if depth > MAX_DEPTH {
        return Err(SkillError::Tree(format!(
            "{prefix}: nested deeper than {MAX_DEPTH} directories"
        )));
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name().into_string().map_err(|n| {
            SkillError::Tree(format!(
                "{prefix}{}: the name is not UTF-8",
                n.to_string_lossy()
            ))
        })?;
        if depth == 0 && name == ".git" {
            continue;
        }
        let rel = format!("{prefix}{name}");
        if name.contains(['\\', '\0']) || name.chars().any(char::is_control) {
            return Err(SkillError::Tree(format!(
                "{rel:?}: a file name with control characters"
            )));
        }
        // The entry itself: a link is reported as a link, never followed.
        let ft = e.file_type()?;
        if ft.is_symlink() {
            return Err(SkillError::Tree(format!(
                "{rel} is a symbolic link; skills may hold only plain files and directories"
            )));
        }
        if ft.is_dir() {
            walk(&e.path(), &format!("{rel}/"), depth + 1, files, total)?;
            continue;
        }
        if !ft.is_file() {
            return Err(SkillError::Tree(format!(
                "{rel} is a device, FIFO or socket; skills may hold only plain files and directories"
            )));
        }
        if files.len() >= MAX_FILES {
            return Err(SkillError::Tree(format!("more than {MAX_FILES} files")));
        }
        let (content, executable) = read_file(&e.path(), &rel)?;
        *total += content.len() as u64;
        if *total > MAX_TOTAL {
            return Err(SkillError::Tree(format!(
                "the skill is larger than {} MiB",
                MAX_TOTAL >> 20
            )));
        }
        files.push(file(&rel, content, executable));
    }
    Ok(())
}

/// Opens without following a link or blocking on a FIFO, checks it is a regular file within
/// the cap (before reading a byte), then reads it.
fn read_file(path: &Path, rel: &str) -> Result<(Vec<u8>, bool), SkillError> {
    use std::os::unix::fs::PermissionsExt as _;
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::NONBLOCK
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| SkillError::Tree(format!("{rel}: {e}")))?;
    let f = std::fs::File::from(fd);
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(SkillError::Tree(format!("{rel} is not a plain file")));
    }
    if meta.len() > MAX_FILE {
        return Err(SkillError::Tree(format!(
            "{rel} is {} bytes; a skill's files may be at most {} MiB",
            meta.len(),
            MAX_FILE >> 20
        )));
    }
    let mut content = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut content)?;
    if content.len() as u64 > MAX_FILE {
        return Err(SkillError::Tree(format!("{rel} grew while it was read")));
    }
    Ok((content, meta.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_paths_and_content_but_not_a_clones_git_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("SKILL.md"), "x").unwrap();
        std::fs::create_dir_all(d.path().join("ref")).unwrap();
        std::fs::write(d.path().join("ref/a.md"), "a").unwrap();
        let t1 = read(d.path()).unwrap();
        assert_eq!(t1.files.len(), 2);
        std::fs::create_dir_all(d.path().join(".git")).unwrap();
        std::fs::write(d.path().join(".git/HEAD"), "ref").unwrap();
        assert_eq!(read(d.path()).unwrap().sha256, t1.sha256);
        std::fs::rename(d.path().join("ref/a.md"), d.path().join("ref/b.md")).unwrap();
        assert_ne!(read(d.path()).unwrap().sha256, t1.sha256);
    }

    #[test]
    fn links_special_files_and_huge_files_refuse_the_skill() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("SKILL.md"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("p")).unwrap();
        assert!(
            read(d.path())
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        std::fs::remove_file(d.path().join("p")).unwrap();
        let big = std::fs::File::create(d.path().join("big.bin")).unwrap();
        big.set_len(1 << 30).unwrap(); // 1 GiB, sparse: refused by its size, never read
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.contains("big.bin is 1073741824 bytes"), "{e}");
    }
}
