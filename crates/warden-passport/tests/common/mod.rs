//! Helpers shared by the passport tests.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

/// `token` with its payload edited by `edit` and its header and signature kept: what an
/// attacker who cannot sign would send.
pub(crate) fn tampered(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let segments: Vec<&str> = token.split('.').collect();
    let decoded = URL_SAFE_NO_PAD
        .decode(segments[1])
        .expect("base64url payload");
    let mut payload: Value = serde_json::from_slice(&decoded).expect("JSON payload");
    edit(&mut payload);
    format!(
        "{}.{}.{}",
        segments[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        segments[2]
    )
}
