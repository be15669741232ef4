//! The skill operations behind `pincer skills` and `/v1/skills…` (one implementation of
//! [`SkillAdmin`]) over `pincer-skills`. Remote git sources are fetched through an egress proxy
//! started for the fetch, deciding with the config's egress policy (so the network switch, the
//! allowlist and the private-address rules apply to skill downloads too); uploaded files are
//! written to a scratch folder under `skills/` and validated like any folder.

use std::sync::Arc;

use base64::Engine as _;
use pincer_audit::AuditLog;
use pincer_config::{Config, NetworkMode, PincerHome};
use pincer_gateway::{SkillAdmin, SkillAdminError, SkillResult, SkillSource};
use pincer_skills::ops::Scratch;
use pincer_skills::source::Source;
use pincer_skills::{SkillError, Skills, Validated};
use pincer_store::{Backend, SkillRecord};
use serde_json::{Value, json};

type Res<T> = Result<T, SkillAdminError>;

/// The skill operations for one home.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The home.
    pub home: PincerHome,
    /// The config (trusted sources, egress policy).
    pub config: Arc<Config>,
    /// The store.
    pub store: Arc<dyn Backend>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
}

/// A [`SkillError`] as the API reports it.
pub fn api_error(e: &SkillError) -> SkillAdminError {
    let status = match e {
        SkillError::Manifest(_) | SkillError::Tree(_) | SkillError::Source(_) => 400,
        SkillError::Blocked(_) => 422,
        SkillError::Git(_) => 502,
        SkillError::NotFound(_) => 404,
        SkillError::State(_) => 409,
        SkillError::Store(_) | SkillError::Audit(_) | SkillError::Io(_) => 500,
    };
    SkillAdminError {
        status,
        code: e.code(),
        message: e.to_string(),
    }
}

/// A record as the API and `pincer skills list --json` show it.
pub fn record_json(r: &SkillRecord) -> Value {
    json!({"name": r.name, "status": r.state.as_str(), "version": r.version,
           "description": r.description, "source": r.source, "verdict": r.verdict,
           "sha256": r.seen_sha256, "approved_sha256": r.approved_sha256,
           "approved_by": r.approved_by, "approved_at": r.approved_at,
           "reason": r.state_reason, "permissions": r.manifest["permissions"],
           "findings": r.findings, "installed_at": r.installed_at, "updated_at": r.updated_at})
}

fn validated_json(v: &Validated) -> Value {
    json!({"name": v.name, "version": v.version, "description": v.description,
           "sha256": v.sha256, "verdict": v.scan.verdict, "findings": v.scan.findings,
           "permissions": v.permissions, "files": v.files})
}

impl Admin {
    /// The skills, with a proxy for remote fetches when the network is on (the proxy task ends
    /// when the returned guard drops).
    async fn skills(&self, remote: bool) -> Res<(Skills, Option<tokio::task::JoinHandle<()>>)> {
        let base = Skills::new(
            self.home.skills_dir(),
            self.store.clone() as Arc<dyn pincer_store::SkillStore>,
            self.audit.clone(),
            self.config.skills.trusted_sources.clone(),
        );
        if !remote || self.config.security.network == NetworkMode::Off {
            return Ok((base, None));
        }
        let egress = crate::web::egress(&self.config, &self.audit);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| internal(&e))?;
        let addr = listener.local_addr().map_err(|e| internal(&e))?;
        let task = tokio::spawn(pincer_web::proxy::EgressProxy::new(egress).serve_tcp(listener));
        Ok((base.with_proxy(Some(format!("http://{addr}"))), Some(task)))
    }

    /// Where `src` is on disk: its `source`, or its uploaded files written to a scratch folder.
    fn materialize(&self, src: &SkillSource) -> Res<(String, Option<Scratch>)> {
        match (&src.source, src.files.is_empty()) {
            (Some(s), true) => Ok((s.clone(), None)),
            (None, false) => {
                let dir = self.home.skills_dir();
                std::fs::create_dir_all(&dir).map_err(|e| internal(&e))?;
                let up = Scratch(
                    pincer_skills::ops::scratch(&dir, "upload").map_err(|e| api_error(&e))?,
                );
                std::fs::create_dir(&up.0).map_err(|e| internal(&e))?;
                for f in &src.files {
                    let plain = pincer_skills::runtime::plain_rel(&f.path);
                    if !plain {
                        return Err(invalid(format!(
                            "`{}` is not a path inside the skill",
                            f.path
                        )));
                    }
                    let bytes = if f.base64 {
                        base64::engine::general_purpose::STANDARD
                            .decode(&f.content)
                            .map_err(|e| invalid(format!("{}: not base64: {e}", f.path)))?
                    } else {
                        f.content.clone().into_bytes()
                    };
                    let path = up.0.join(&f.path);
                    if let Some(p) = path.parent() {
                        std::fs::create_dir_all(p).map_err(|e| internal(&e))?;
                    }
                    if path.exists() {
                        return Err(invalid(format!("`{}` is given twice", f.path)));
                    }
                    std::fs::write(&path, bytes).map_err(|e| internal(&e))?;
                }
                let s = up.0.to_string_lossy().into_owned();
                Ok((s, Some(up)))
            }
            _ => Err(invalid(
                "give either `source` (a path or git URL) or `files`".into(),
            )),
        }
    }
}

fn internal(e: &dyn std::fmt::Display) -> SkillAdminError {
    SkillAdminError {
        status: 500,
        code: "skill_internal",
        message: e.to_string(),
    }
}

fn invalid(message: String) -> SkillAdminError {
    SkillAdminError {
        status: 400,
        code: "invalid",
        message,
    }
}

fn is_remote(s: &str) -> bool {
    matches!(Source::parse(s), Ok(Source::Remote { .. }))
}

impl SkillAdmin for Admin {
    fn list(&self) -> SkillResult<'_> {
        Box::pin(async move {
            let (skills, _) = self.skills(false).await?;
            let list = skills.list().await.map_err(|e| api_error(&e))?;
            Ok(json!({"skills": list.iter().map(record_json).collect::<Vec<_>>()}))
        })
    }

    fn show<'a>(&'a self, name: &'a str) -> SkillResult<'a> {
        Box::pin(async move {
            let (skills, _) = self.skills(false).await?;
            let r = skills.get(name).await.map_err(|e| api_error(&e))?;
            Ok(json!({"skill": record_json(&r), "files": r.manifest["files"]}))
        })
    }

    fn validate<'a>(&'a self, source: SkillSource) -> SkillResult<'a> {
        Box::pin(async move {
            let (src, _upload) = self.materialize(&source)?;
            let (skills, proxy) = self.skills(is_remote(&src)).await?;
            let out = skills.validate(&src).await;
            if let Some(p) = proxy {
                p.abort();
            }
            let v = out.map_err(|e| api_error(&e))?;
            Ok(json!({"validation": validated_json(&v)}))
        })
    }

    fn install<'a>(&'a self, source: SkillSource, by: &'a str) -> SkillResult<'a> {
        Box::pin(async move {
            let (src, upload) = self.materialize(&source)?;
            let (skills, proxy) = self.skills(is_remote(&src)).await?;
            let shown = if upload.is_some() {
                "upload"
            } else {
                src.as_str()
            };
            let out = skills.install_as(&src, shown, by).await;
            if let Some(p) = proxy {
                p.abort();
            }
            let (rec, v) = out.map_err(|e| api_error(&e))?;
            Ok(json!({"skill": record_json(&rec), "validation": validated_json(&v)}))
        })
    }

    fn approve<'a>(
        &'a self,
        name: &'a str,
        sha256: Option<&'a str>,
        accept_warnings: bool,
        by: &'a str,
    ) -> SkillResult<'a> {
        Box::pin(async move {
            let (skills, _) = self.skills(false).await?;
            let r = skills
                .approve(name, sha256, accept_warnings, by)
                .await
                .map_err(|e| api_error(&e))?;
            Ok(json!({"skill": record_json(&r)}))
        })
    }

    fn act<'a>(&'a self, name: &'a str, action: &'a str, by: &'a str) -> SkillResult<'a> {
        Box::pin(async move {
            let (skills, _) = self.skills(false).await?;
            let r = match action {
                "enable" => skills.set_enabled(name, true, by).await,
                "disable" => skills.set_enabled(name, false, by).await,
                "revoke" => skills.revoke(name, by, "revoked by an operator").await,
                "rescan" => skills.rescan(name, by).await.map(|(r, _)| r),
                other => {
                    return Err(SkillAdminError {
                        status: 404,
                        code: "not_found",
                        message: format!(
                            "no action `{other}` (approve, enable, disable, rescan, revoke)"
                        ),
                    });
                }
            }
            .map_err(|e| api_error(&e))?;
            Ok(json!({"skill": record_json(&r)}))
        })
    }

    fn remove<'a>(&'a self, name: &'a str, by: &'a str) -> SkillResult<'a> {
        Box::pin(async move {
            let (skills, _) = self.skills(false).await?;
            skills.remove(name, by).await.map_err(|e| api_error(&e))?;
            Ok(json!({"removed": name}))
        })
    }
}
