//! Installing and managing skills. Every step is audited (`skill.*`) before it is reported
//! done; a step whose audit record cannot be written is not taken.
//!
//! Install: fetch (folder or git) → read the tree (caps, no links or special files) → parse
//! `SKILL.md` → scan → refuse on `block`, nothing written → write the scanned bytes (not the
//! source again) into `skills/.staging-*`, read them back and compare the hash → swap into
//! `skills/<name>/` → record `pending` (or keep the approval when the content is exactly the
//! approved one). Approve pins the content hash last scanned, after hashing the files on disk
//! again; a `warn` verdict must be accepted explicitly. A skill whose files change is
//! quarantined at its next use or rescan.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use pincer_audit::AuditLog;
use pincer_store::{SkillRecord, SkillState, SkillStore};
use serde::Serialize;
use serde_json::{Value, json};

use crate::SkillError;
use crate::manifest::{self, SkillDoc};
use crate::scan::{self, Report, Verdict};
use crate::source::{self, Source};
use crate::tree::{self, Tree};

/// A skill read and scanned (nothing installed).
#[derive(Debug, Clone, Serialize)]
pub struct Validated {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its description.
    pub description: String,
    /// Its manifest.
    pub permissions: manifest::Permissions,
    /// sha256 over its files.
    pub sha256: String,
    /// Its files, by path.
    pub files: Vec<String>,
    /// The scan.
    pub scan: Report,
    #[serde(skip)]
    tree: Tree,
}

/// The skills of one Pincer home.
#[derive(Debug, Clone)]
pub struct Skills {
    dir: PathBuf,
    store: Arc<dyn SkillStore>,
    audit: Arc<AuditLog>,
    trusted_sources: Vec<String>,
    proxy: Option<String>,
}

/// A fresh scratch directory name under `dir` (`.<what>-<random>`).
///
/// # Errors
/// When no random bytes can be had.
pub fn scratch(dir: &Path, what: &str) -> Result<PathBuf, SkillError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| SkillError::Io(std::io::Error::other(e.to_string())))?;
    Ok(dir.join(format!(".{what}-{}", hex::encode(b))))
}

/// Removes a scratch directory when dropped (whatever happened).
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Skills {
    /// The skills in `dir` (`<home>/skills`), recorded in `store`, audited to `audit`;
    /// remote git sources must be covered by `trusted_sources`.
    pub fn new(
        dir: PathBuf,
        store: Arc<dyn SkillStore>,
        audit: Arc<AuditLog>,
        trusted_sources: Vec<String>,
    ) -> Self {
        Self {
            dir,
            store,
            audit,
            trusted_sources,
            proxy: None,
        }
    }

    /// Remote git fetches go through this HTTP proxy (the egress proxy); without one they are
    /// refused.
    #[must_use]
    pub fn with_proxy(mut self, proxy: Option<String>) -> Self {
        self.proxy = proxy;
        self
    }

    /// The skills directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SkillStore> {
        &self.store
    }

    pub(crate) async fn audit(&self, kind: &'static str, fields: Value) -> Result<(), SkillError> {
        let log = self.audit.clone();
        tokio::task::spawn_blocking(move || log.append(kind, fields))
            .await
            .map_err(|e| SkillError::Audit(e.to_string()))?
            .map(|_| ())
            .map_err(|e| SkillError::Audit(e.to_string()))
    }

    /// Reads and scans the skill in `dir` (nothing is installed).
    ///
    /// # Errors
    /// When its files or `SKILL.md` are refused.
    pub async fn validate_dir(&self, dir: &Path) -> Result<Validated, SkillError> {
        let d = dir.to_owned();
        let tree = tokio::task::spawn_blocking(move || tree::read(&d))
            .await
            .map_err(|e| SkillError::Io(std::io::Error::other(e.to_string())))??;
        let others: Vec<String> = self
            .store
            .skills()
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        validate_tree(tree, &others)
    }

    /// Fetches `source` (see [`Source::parse`]) and validates it; the scratch copy is removed
    /// when the returned guard drops.
    async fn fetch(&self, source: &str) -> Result<(Validated, Source), SkillError> {
        let src = Source::parse(source)?;
        src.check_trusted(&self.trusted_sources)?;
        match &src {
            Source::Dir(d) => Ok((self.validate_dir(d).await?, src)),
            Source::LocalGit { .. } | Source::Remote { .. } => {
                std::fs::create_dir_all(&self.dir)?;
                let tmp = Scratch(scratch(&self.dir, "incoming")?);
                source::clone(&src, &tmp.0, self.proxy.as_deref()).await?;
                let v = self.validate_dir(&tmp.0).await?;
                Ok((v, src))
            }
        }
    }

    /// Scans `source` without installing it.
    ///
    /// # Errors
    /// As [`Skills::install`], short of writing anything.
    pub async fn validate(&self, source: &str) -> Result<Validated, SkillError> {
        Ok(self.fetch(source).await?.0)
    }

    /// Installs `source` (scan first; a blocked skill is refused and nothing is written).
    ///
    /// # Errors
    /// [`SkillError::Blocked`] with the findings, or why the source or its files are refused.
    pub async fn install(
        &self,
        source: &str,
        by: &str,
    ) -> Result<(SkillRecord, Validated), SkillError> {
        self.install_as(source, source, by).await
    }

    /// [`Skills::install`], recording the source as `shown` (an upload's scratch folder is
    /// recorded as `upload`).
    ///
    /// # Errors
    /// As [`Skills::install`].
    pub async fn install_as(
        &self,
        source: &str,
        shown: &str,
        by: &str,
    ) -> Result<(SkillRecord, Validated), SkillError> {
        let (v, _) = match self.fetch(source).await {
            Ok(x) => x,
            Err(e) => {
                self.audit(
                    "skill.refused",
                    json!({"source": shown, "by": by, "reason": e.to_string(), "code": e.code()}),
                )
                .await?;
                return Err(e);
            }
        };
        if v.scan.verdict == Verdict::Block {
            let why: Vec<String> = v
                .scan
                .findings
                .iter()
                .filter(|f| f.level == scan::Level::Block)
                .map(|f| format!("{} ({}:{}): {}", f.rule, f.file, f.line, f.message))
                .collect();
            self.audit(
                "skill.refused",
                json!({"source": shown, "by": by, "name": v.name, "sha256": v.sha256,
                       "verdict": "block", "findings": v.scan.findings}),
            )
            .await?;
            return Err(SkillError::Blocked(why.join("; ")));
        }
        let rec = self.write(&v, shown, by).await?;
        Ok((rec, v))
    }

    /// Writes the validated files into `skills/<name>/` and records the skill.
    async fn write(
        &self,
        v: &Validated,
        source: &str,
        by: &str,
    ) -> Result<SkillRecord, SkillError> {
        std::fs::create_dir_all(&self.dir)?;
        let staging = Scratch(scratch(&self.dir, "staging")?);
        let dest = self.dir.join(&v.name);
        let (tree_c, staging_p, dest_c) = (v.tree.clone(), staging.0.clone(), dest.clone());
        tokio::task::spawn_blocking(move || place(&tree_c, &staging_p, &dest_c))
            .await
            .map_err(|e| SkillError::Io(std::io::Error::other(e.to_string())))??;
        let now = Utc::now();
        let prev = self.store.skill(&v.name).await?;
        let keep = prev.as_ref().filter(|p| {
            p.approved_sha256.as_deref() == Some(v.sha256.as_str())
                && matches!(p.state, SkillState::Enabled | SkillState::Disabled)
        });
        let rec = SkillRecord {
            name: v.name.clone(),
            source: source.to_owned(),
            version: v.version.clone(),
            description: v.description.clone(),
            manifest: manifest_json(v),
            verdict: v.scan.verdict.as_str().to_owned(),
            findings: serde_json::to_value(&v.scan.findings).unwrap_or_default(),
            seen_sha256: v.sha256.clone(),
            approved_sha256: keep.and_then(|p| p.approved_sha256.clone()),
            approved_by: keep.and_then(|p| p.approved_by.clone()),
            approved_at: keep.and_then(|p| p.approved_at),
            state: keep.map_or(SkillState::Pending, |p| p.state),
            state_reason: None,
            installed_at: prev.as_ref().map_or(now, |p| p.installed_at),
            updated_at: now,
        };
        self.audit(
            "skill.installed",
            json!({"name": v.name, "version": v.version, "source": source, "by": by,
                   "sha256": v.sha256, "verdict": rec.verdict, "findings": v.scan.findings.len(),
                   "state": rec.state.as_str(), "permissions": v.permissions}),
        )
        .await?;
        self.store.skill_record(&rec).await?;
        Ok(rec)
    }

    /// The skill `name`.
    ///
    /// # Errors
    /// [`SkillError::NotFound`].
    pub async fn get(&self, name: &str) -> Result<SkillRecord, SkillError> {
        self.store
            .skill(name)
            .await?
            .ok_or_else(|| SkillError::NotFound(name.to_owned()))
    }

    /// Every installed skill.
    ///
    /// # Errors
    /// The store's.
    pub async fn list(&self) -> Result<Vec<SkillRecord>, SkillError> {
        Ok(self.store.skills().await?)
    }

    /// Reads the installed files of `name` again.
    pub(crate) async fn installed_tree(&self, name: &str) -> Result<Tree, SkillError> {
        let d = self.dir.join(name);
        tokio::task::spawn_blocking(move || tree::read(&d))
            .await
            .map_err(|e| SkillError::Io(std::io::Error::other(e.to_string())))?
    }

    /// Approves the content of `name` as it is on disk now, which must be what was last
    /// scanned (and `sha256`, when given); a `warn` verdict needs `accept_warnings`.
    ///
    /// # Errors
    /// [`SkillError::State`] saying why not.
    pub async fn approve(
        &self,
        name: &str,
        sha256: Option<&str>,
        accept_warnings: bool,
        by: &str,
    ) -> Result<SkillRecord, SkillError> {
        let rec = self.get(name).await?;
        let on_disk = self.installed_tree(name).await?;
        if on_disk.sha256 != rec.seen_sha256 {
            return Err(SkillError::State(format!(
                "the files of `{name}` changed since they were scanned; run `pincer skills rescan {name}` and review again"
            )));
        }
        if sha256.is_some_and(|s| s != rec.seen_sha256) {
            return Err(SkillError::State(format!(
                "`{name}` is {} now, not the content you named",
                rec.seen_sha256
            )));
        }
        match rec.verdict.as_str() {
            "block" => {
                return Err(SkillError::State(format!(
                    "`{name}` is blocked by the scan and cannot be approved"
                )));
            }
            "warn" if !accept_warnings => {
                return Err(SkillError::State(format!(
                    "the scan warned about `{name}`; read the findings (`pincer skills show {name}`) and approve with --accept-warnings"
                )));
            }
            _ => {}
        }
        self.audit(
            "skill.approved",
            json!({"name": name, "sha256": rec.seen_sha256, "by": by, "verdict": rec.verdict}),
        )
        .await?;
        if !self
            .store
            .skill_approve(name, &rec.seen_sha256, by, Utc::now())
            .await?
        {
            return Err(SkillError::State(format!(
                "`{name}` changed while it was being approved; review it again"
            )));
        }
        self.get(name).await
    }

    /// Enables (from `disabled`) or disables (from `enabled`) `name`.
    ///
    /// # Errors
    /// [`SkillError::State`] from any other state.
    pub async fn set_enabled(
        &self,
        name: &str,
        on: bool,
        by: &str,
    ) -> Result<SkillRecord, SkillError> {
        let rec = self.get(name).await?;
        let (from, to, kind) = if on {
            (SkillState::Disabled, SkillState::Enabled, "skill.enabled")
        } else {
            (SkillState::Enabled, SkillState::Disabled, "skill.disabled")
        };
        if rec.state != from {
            return Err(SkillError::State(format!(
                "`{name}` is {}; only a {} skill can be {}",
                rec.state.as_str(),
                from.as_str(),
                if on {
                    "enabled (approve a pending, quarantined or revoked one)"
                } else {
                    "disabled"
                }
            )));
        }
        self.audit(kind, json!({"name": name, "by": by})).await?;
        self.store
            .skill_transition(name, &[from], to, None, Utc::now())
            .await?;
        self.get(name).await
    }

    /// Withdraws `name` everywhere at once: no run can use or read it until it is approved again.
    ///
    /// # Errors
    /// [`SkillError::NotFound`].
    pub async fn revoke(
        &self,
        name: &str,
        by: &str,
        reason: &str,
    ) -> Result<SkillRecord, SkillError> {
        self.get(name).await?;
        self.audit(
            "skill.revoked",
            json!({"name": name, "by": by, "reason": reason}),
        )
        .await?;
        let all = SkillState::ALL;
        self.store
            .skill_transition(name, &all, SkillState::Revoked, Some(reason), Utc::now())
            .await?;
        self.get(name).await
    }

    /// Removes `name`: its files and its record.
    ///
    /// # Errors
    /// [`SkillError::NotFound`].
    pub async fn remove(&self, name: &str, by: &str) -> Result<(), SkillError> {
        self.get(name).await?;
        self.audit("skill.removed", json!({"name": name, "by": by}))
            .await?;
        // Out of use first, then the files.
        self.store.skill_remove(name).await?;
        let d = self.dir.join(name);
        match std::fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Scans the installed files of `name` again: a changed tree is quarantined (if it was in
    /// use), a blocked one blocked.
    ///
    /// # Errors
    /// When the files cannot be read (the skill is then quarantined).
    pub async fn rescan(
        &self,
        name: &str,
        by: &str,
    ) -> Result<(SkillRecord, Validated), SkillError> {
        let rec = self.get(name).await?;
        let others: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .map(|s| s.name)
            .filter(|n| n != name)
            .collect();
        let v = match self
            .installed_tree(name)
            .await
            .and_then(|t| validate_tree(t, &others))
        {
            Ok(v) => v,
            Err(e) => {
                self.quarantine(&rec, &format!("its files are refused: {e}"))
                    .await?;
                return Err(e);
            }
        };
        let now = Utc::now();
        let changed = rec
            .approved_sha256
            .as_deref()
            .is_some_and(|a| a != v.sha256);
        let state = if v.scan.verdict == Verdict::Block {
            SkillState::Blocked
        } else if changed && matches!(rec.state, SkillState::Enabled | SkillState::Disabled) {
            SkillState::Quarantined
        } else {
            rec.state
        };
        let reason = match state {
            SkillState::Blocked => Some("the scan blocks it".to_owned()),
            SkillState::Quarantined if state != rec.state => Some(format!(
                "files changed: {}",
                changed_files(&rec, &v.tree).join(", ")
            )),
            _ => rec.state_reason.clone(),
        };
        let updated = SkillRecord {
            manifest: manifest_json(&v),
            verdict: v.scan.verdict.as_str().to_owned(),
            findings: serde_json::to_value(&v.scan.findings).unwrap_or_default(),
            seen_sha256: v.sha256.clone(),
            state,
            state_reason: reason,
            updated_at: now,
            version: v.version.clone(),
            description: v.description.clone(),
            ..rec.clone()
        };
        self.audit(
            "skill.rescanned",
            json!({"name": name, "by": by, "sha256": v.sha256, "verdict": updated.verdict,
                   "findings": v.scan.findings.len(), "state": state.as_str(),
                   "was": rec.state.as_str()}),
        )
        .await?;
        self.store.skill_record(&updated).await?;
        Ok((updated, v))
    }

    /// Quarantines an in-use skill whose files no longer match its approval.
    pub(crate) async fn quarantine(
        &self,
        rec: &SkillRecord,
        reason: &str,
    ) -> Result<(), SkillError> {
        let from = [
            SkillState::Enabled,
            SkillState::Disabled,
            SkillState::Pending,
        ];
        if !from.contains(&rec.state) {
            return Ok(());
        }
        self.audit(
            "skill.quarantined",
            json!({"name": rec.name, "reason": reason, "approved_sha256": rec.approved_sha256}),
        )
        .await?;
        self.store
            .skill_transition(
                &rec.name,
                &from,
                SkillState::Quarantined,
                Some(reason),
                Utc::now(),
            )
            .await?;
        Ok(())
    }
}

/// The files whose content differs from what was recorded (added, removed or changed).
pub(crate) fn changed_files(rec: &SkillRecord, tree: &Tree) -> Vec<String> {
    let recorded = rec.manifest["files"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let now = tree.hashes();
    let mut out: Vec<String> = now
        .iter()
        .filter(|(k, v)| recorded.get(*k).and_then(|x| x.as_str()) != Some(v.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    out.extend(recorded.keys().filter(|k| !now.contains_key(*k)).cloned());
    out.sort();
    if out.is_empty() {
        out.push("(unknown)".into());
    }
    out
}

fn manifest_json(v: &Validated) -> Value {
    json!({"permissions": v.permissions, "files": v.tree.hashes()})
}

/// Validates a tree: `SKILL.md` at its top, parsed, scanned.
///
/// # Errors
/// A missing or malformed `SKILL.md`.
pub fn validate_tree(tree: Tree, others: &[String]) -> Result<Validated, SkillError> {
    let md = tree.get("SKILL.md").ok_or_else(|| {
        SkillError::Manifest("there is no SKILL.md at the top of the skill".into())
    })?;
    let text = std::str::from_utf8(&md.content)
        .map_err(|_| SkillError::Manifest("SKILL.md is not UTF-8".into()))?;
    let doc: SkillDoc = manifest::parse(text)?;
    let report = scan::scan(&doc, &tree, others);
    Ok(Validated {
        name: doc.name,
        version: doc.version,
        description: doc.description,
        permissions: doc.permissions,
        sha256: tree.sha256.clone(),
        files: tree.files.iter().map(|f| f.rel.clone()).collect(),
        scan: report,
        tree,
    })
}

/// Writes `tree` into `staging`, checks it reads back identically, and swaps it into `dest`.
fn place(tree: &Tree, staging: &Path, dest: &Path) -> Result<(), SkillError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir(staging)?;
    for f in &tree.files {
        let path = staging.join(&f.rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)?;
        out.write_all(&f.content)?;
        out.sync_all()?;
    }
    let back = tree::read(staging)?;
    if back.sha256 != tree.sha256 {
        return Err(SkillError::Tree(
            "the written files do not read back the same".into(),
        ));
    }
    if dest.exists() {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            staging,
            rustix::fs::CWD,
            dest,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(|e| SkillError::Io(e.into()))?;
        // `staging` now holds the previous version; the caller's guard removes it.
    } else {
        std::fs::rename(staging, dest)?;
    }
    Ok(())
}
