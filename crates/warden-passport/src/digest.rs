//! The input digest: SHA-256 over the payloads' contents, in a canonical order.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

/// One payload, as a worker's SDK and the proxy both see it: metadata entries (any order) and
/// data.
#[derive(Clone, Copy, Debug)]
pub struct PayloadView<'a, M> {
    /// The metadata entries (`encoding` and the like).
    pub metadata: M,
    /// The payload's bytes.
    pub data: &'a [u8],
}

fn length(hasher: &mut Sha256, len: usize) {
    // Lengths beyond u32 cannot occur in a gRPC message under Warden's size limit.
    hasher.update(u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

/// The digest of `payloads`, as `sha256:<base64url, unpadded>`; see the
/// [crate docs](crate#the-format) for the exact bytes hashed.
///
/// ```
/// use warden_passport::{PayloadView, input_digest};
///
/// let metadata = [("encoding", &b"json/plain"[..])];
/// let digest = input_digest([PayloadView { metadata, data: br#"{"amount":250}"# }]);
/// assert!(digest.starts_with("sha256:"));
/// ```
pub fn input_digest<'a, M, K, V>(payloads: impl IntoIterator<Item = PayloadView<'a, M>>) -> String
where
    M: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let payloads: Vec<PayloadView<'a, M>> = payloads.into_iter().collect();
    let mut hasher = Sha256::new();
    length(&mut hasher, payloads.len());
    for payload in payloads {
        let mut entries: Vec<(K, V)> = payload.metadata.into_iter().collect();
        entries.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        length(&mut hasher, entries.len());
        for (key, value) in &entries {
            length(&mut hasher, key.as_ref().len());
            hasher.update(key.as_ref());
            length(&mut hasher, value.as_ref().len());
            hasher.update(value.as_ref());
        }
        length(&mut hasher, payload.data.len());
        hasher.update(payload.data);
    }
    format!("sha256:{}", URL_SAFE_NO_PAD.encode(hasher.finalize()))
}
