//! Keys fetched from a JWKS URL: cached, refreshed in the background and, rate-limited, when a
//! token names a `kid` the set does not hold. A failed refresh keeps the last good keys.

use std::{
    sync::{
        Arc, Mutex, PoisonError, RwLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use jsonwebtoken::jwk::JwkSet;

use super::keys::KeySet;

/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// How a JWKS URL is fetched and refreshed.
#[derive(Clone, Debug)]
pub(crate) struct JwksOptions {
    pub(crate) refresh: Duration,
    pub(crate) min_refresh: Duration,
    pub(crate) timeout: Duration,
    pub(crate) tls: Option<rustls::ClientConfig>,
}

pub(crate) struct JwksSource {
    url: http::Uri,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    keys: RwLock<Arc<KeySet>>,
    /// Bumped whenever the set's content changes; cached tokens carry the generation.
    generation: AtomicU64,
    status: Mutex<Status>,
    /// One refresh at a time; callers that waited re-check instead of fetching again.
    refreshing: tokio::sync::Mutex<()>,
    options: JwksOptions,
}

#[derive(Default)]
struct Status {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    fingerprint: Vec<String>,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("url", &self.url)
            .field("keys", &self.keys().len())
            .finish_non_exhaustive()
    }
}

impl JwksSource {
    pub(crate) fn new(url: http::Uri, options: JwksOptions) -> Result<Self, String> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new();
        let connector = match options.tls.clone() {
            Some(tls) => connector.with_tls_config(tls),
            None => connector
                .with_native_roots()
                .map_err(|e| format!("no TLS roots for {url}: {e}"))?,
        };
        let connector = connector.https_or_http().enable_http1().build();
        if url.scheme_str() == Some("http")
            && !url
                .host()
                .is_some_and(|h| h == "localhost" || h.starts_with("127."))
        {
            tracing::warn!(%url, "JWKS fetched over plain HTTP: keys can be swapped in transit");
        }
        Ok(Self {
            url,
            client: Client::builder(TokioExecutor::new()).build(connector),
            keys: RwLock::new(Arc::new(KeySet::set())),
            generation: AtomicU64::new(0),
            status: Mutex::new(Status::default()),
            refreshing: tokio::sync::Mutex::new(()),
            options,
        })
    }

    pub(crate) fn url(&self) -> &http::Uri {
        &self.url
    }

    pub(crate) fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.status().last_error.clone()
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an on-demand refresh may run now (the last attempt is old enough).
    pub(crate) fn may_refresh(&self) -> bool {
        self.status()
            .last_attempt
            .is_none_or(|at| at.elapsed() >= self.options.min_refresh)
    }

    /// Refreshes on demand: rate-limited, and skipped when another caller refreshed while this
    /// one waited.
    pub(crate) async fn refresh_on_demand(&self, seen_generation: u64) {
        let _one = self.refreshing.lock().await;
        if self.generation() != seen_generation || !self.may_refresh() {
            return;
        }
        self.refresh_now().await;
    }

    /// Fetches the set and swaps it in if it changed; on failure the last good keys stay.
    pub(crate) async fn refresh(&self) {
        let _one = self.refreshing.lock().await;
        self.refresh_now().await;
    }

    async fn refresh_now(&self) {
        self.status().last_attempt = Some(Instant::now());
        match tokio::time::timeout(self.options.timeout, self.fetch()).await {
            Ok(Ok(set)) => self.install(&set),
            Ok(Err(error)) => self.failed(error),
            Err(_) => self.failed(format!("no answer within {:?}", self.options.timeout)),
        }
    }

    fn failed(&self, error: String) {
        tracing::warn!(url = %self.url, %error, "JWKS refresh failed; keeping the last good keys");
        self.status().last_error = Some(error);
    }

    fn install(&self, set: &JwkSet) {
        let mut fingerprint: Vec<String> = set
            .keys
            .iter()
            .map(|jwk| serde_json::to_string(jwk).unwrap_or_default())
            .collect();
        fingerprint.sort();
        let mut status = self.status();
        status.last_error = None;
        if status.fingerprint == fingerprint && !self.keys().is_empty() {
            return;
        }
        let (keys, skipped) = KeySet::from_jwks(set);
        for reason in &skipped {
            tracing::warn!(url = %self.url, "JWKS: skipped {reason}");
        }
        if keys.is_empty() {
            let error = "the JWKS holds no usable signing key".to_owned();
            tracing::warn!(url = %self.url, "{error}; keeping the last good keys");
            status.last_error = Some(error);
            return;
        }
        let kids: Vec<&str> = keys.kids().collect();
        tracing::info!(url = %self.url, ?kids, "JWKS keys loaded");
        status.fingerprint = fingerprint;
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let request = http::Request::get(self.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("answered HTTP {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| format!("not a JWKS document: {e}"))
    }
}

/// Refreshes `source` every `every` until the source is dropped.
pub(crate) fn spawn_refresher(source: &Arc<JwksSource>, every: Duration) {
    let weak: Weak<JwksSource> = Arc::downgrade(source);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(source) = weak.upgrade() else {
                return;
            };
            source.refresh().await;
        }
    });
}
