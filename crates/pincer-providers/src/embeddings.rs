//! An OpenAI-compatible `/embeddings` client (memory search, A7), on the same HTTP core as the
//! chat clients: retries with back-off, classified errors, the key only in a header and scrubbed
//! from errors, and a bounded answer.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::http::{HttpCore, headers};
use crate::{ApiKey, HttpSettings, ProviderError};

/// Largest embeddings answer read.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Texts sent per request.
const BATCH: usize = 64;

/// The client.
#[derive(Debug, Clone)]
pub struct EmbeddingsClient {
    core: Arc<HttpCore>,
    url: String,
    model: String,
}

impl EmbeddingsClient {
    /// A client for `{base_url}/embeddings` and `model`.
    ///
    /// # Errors
    /// None today: the HTTP client is built (and can fail, as a network error) at the first
    /// request, so that nothing loads TLS roots before a model is called.
    pub fn new(
        base_url: &str,
        model: &str,
        key: Option<ApiKey>,
        settings: HttpSettings,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            core: Arc::new(HttpCore::new(settings, key, base_url)),
            url: format!("{}/embeddings", base_url.trim_end_matches('/')),
            model: model.to_owned(),
        })
    }

    /// One vector per text, in order.
    ///
    /// # Errors
    /// A classified [`ProviderError`]: the server's failure, or an answer that is not one
    /// vector per text.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let auth = self.core.key().map(|k| format!("Bearer {}", k.expose()));
        let mut pairs = vec![("accept", "application/json")];
        if let Some(a) = &auth {
            pairs.push(("authorization", a.as_str()));
        }
        let hdrs = headers(&pairs)?;
        let cancel = CancellationToken::new();
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            let body = crate::http::json_bytes(&json!({"model": self.model, "input": batch}))?;
            let resp = self
                .core
                .post_json(&self.url, hdrs.clone(), &body, &cancel)
                .await?;
            let bytes = self.core.read_body(resp, MAX_BODY, &cancel).await?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ProviderError::malformed(format!("embeddings answer: {e}")))?;
            let data = v["data"]
                .as_array()
                .ok_or_else(|| ProviderError::malformed("embeddings answer without `data`"))?;
            if data.len() != batch.len() {
                return Err(ProviderError::malformed(
                    "embeddings answer with the wrong number of vectors",
                ));
            }
            for d in data {
                let vec = d["embedding"]
                    .as_array()
                    .ok_or_else(|| ProviderError::malformed("embeddings item without `embedding`"))?
                    .iter()
                    .map(|x| {
                        #[allow(clippy::cast_possible_truncation, reason = "vectors are f32")]
                        let f = x.as_f64().unwrap_or(0.0) as f32;
                        f
                    })
                    .collect();
                out.push(vec);
            }
        }
        Ok(out)
    }
}
