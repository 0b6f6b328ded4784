use std::{fmt, sync::Arc, sync::OnceLock};

use bytes::Bytes;
use serde_json::Value;

/// Turns raw argument bytes into a JSON value; `None` when they cannot be read.
pub type ArgsDecoder = fn(&[u8]) -> Option<Value>;

/// Like [`ArgsDecoder`], for decoders that carry state (a protobuf descriptor, say).
pub type SharedArgsDecoder = Arc<dyn Fn(&[u8]) -> Option<Value> + Send + Sync>;

/// The decoded arguments of an operation, parsed only when a policy first reads them.
///
/// Most policies never look at arguments; parsing them for every call would cost them all.
/// Arguments arrive as bytes — a JSON body, a `json/plain` payload, an embedded protobuf
/// message — kept as a slice of the request's own buffer ([`Bytes`], no copy) together with
/// the decoder that reads them. They are decoded on the first [`get`](Args::get); bytes the
/// decoder cannot read are absent, so rules never judge bytes they cannot read.
#[derive(Clone, Default)]
pub struct Args {
    raw: Option<Raw>,
    parsed: OnceLock<Option<Value>>,
}

#[derive(Clone)]
struct Raw {
    bytes: Bytes,
    decoder: Decoder,
}

#[derive(Clone)]
enum Decoder {
    Fn(ArgsDecoder),
    Shared(SharedArgsDecoder),
}

impl Decoder {
    fn decode(&self, bytes: &[u8]) -> Option<Value> {
        match self {
            Self::Fn(decode) => decode(bytes),
            Self::Shared(decode) => decode(bytes),
        }
    }
}

fn json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

fn unreadable(_: &[u8]) -> Option<Value> {
    None
}

impl Args {
    /// No arguments.
    pub fn none() -> Self {
        Self::default()
    }

    /// Arguments already decoded.
    pub fn from_value(value: Value) -> Self {
        Self {
            raw: None,
            parsed: OnceLock::from(Some(value)),
        }
    }

    /// Arguments that are present but cannot be read (an encoding Warden does not decode):
    /// [`get`](Args::get) answers `None` while [`is_present`](Args::is_present) is true, so
    /// rules fail closed on them.
    pub fn opaque() -> Self {
        Self {
            raw: Some(Raw {
                bytes: Bytes::new(),
                decoder: Decoder::Fn(unreadable),
            }),
            parsed: OnceLock::from(None),
        }
    }

    /// Arguments as JSON bytes, parsed on first use; empty bytes mean none.
    pub fn from_json_bytes(bytes: impl Into<Bytes>) -> Self {
        Self::lazy(bytes, json)
    }

    /// Arguments as bytes that `decoder` reads on first use; empty bytes mean none.
    pub fn lazy(bytes: impl Into<Bytes>, decoder: ArgsDecoder) -> Self {
        Self::raw(bytes.into(), Decoder::Fn(decoder))
    }

    /// Like [`lazy`](Self::lazy), with a decoder that carries state.
    pub fn lazy_shared(bytes: impl Into<Bytes>, decoder: SharedArgsDecoder) -> Self {
        Self::raw(bytes.into(), Decoder::Shared(decoder))
    }

    fn raw(bytes: Bytes, decoder: Decoder) -> Self {
        if bytes.is_empty() {
            return Self::none();
        }
        Self {
            raw: Some(Raw { bytes, decoder }),
            parsed: OnceLock::new(),
        }
    }

    /// The arguments, decoding them now if they are still bytes.
    pub fn get(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| {
                self.raw
                    .as_ref()
                    .and_then(|raw| raw.decoder.decode(&raw.bytes))
            })
            .as_ref()
    }

    /// Whether the call carried arguments at all (decoded or not).
    pub fn is_present(&self) -> bool {
        self.raw.is_some() || self.parsed.get().is_some_and(Option::is_some)
    }
}

impl From<Value> for Args {
    fn from(value: Value) -> Self {
        Self::from_value(value)
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.parsed.get(), &self.raw) {
            (Some(Some(value)), _) => write!(f, "Args({value})"),
            (None, Some(raw)) => write!(f, "Args(<{} bytes, not decoded yet>)", raw.bytes.len()),
            (Some(None), Some(_)) => f.write_str("Args(<unreadable>)"),
            _ => f.write_str("Args(none)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bytes_are_parsed_on_first_read_and_garbage_reads_as_absent() {
        let args = Args::from_json_bytes(br#"{"amount": 5}"#.to_vec());
        assert!(args.is_present());
        assert!(format!("{args:?}").contains("not decoded"));
        assert_eq!(
            args.get().and_then(|v| v.get("amount")),
            Some(&Value::from(5))
        );
        assert!(format!("{args:?}").contains("amount"));

        let garbage = Args::from_json_bytes(b"\x00\x01 not json".to_vec());
        assert_eq!(garbage.get(), None);
        assert!(garbage.is_present());
        assert!(!Args::from_json_bytes(Vec::new()).is_present());
    }

    #[test]
    fn a_lazy_decoder_runs_once_on_the_bytes_it_was_given() {
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        fn count_bytes(bytes: &[u8]) -> Option<Value> {
            CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(Value::from(bytes.len()))
        }
        let buffer = Bytes::from_static(b"0123456789");
        let args = Args::lazy(buffer.slice(2..5), count_bytes);
        assert_eq!(CALLS.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(args.get(), Some(&Value::from(3)));
        assert_eq!(args.get(), Some(&Value::from(3)));
        assert_eq!(CALLS.load(std::sync::atomic::Ordering::Relaxed), 1);

        let shared = Args::lazy_shared(buffer, Arc::new(|b: &[u8]| Some(Value::from(b[0]))));
        assert_eq!(shared.get(), Some(&Value::from(b'0')));
    }

    #[test]
    fn opaque_arguments_are_present_but_unreadable() {
        let args = Args::opaque();
        assert!(args.is_present());
        assert_eq!(args.get(), None);
        assert_eq!(format!("{args:?}"), "Args(<unreadable>)");
    }
}
