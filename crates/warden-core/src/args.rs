use std::{fmt, sync::OnceLock};

use serde_json::Value;

/// The decoded arguments of an operation, parsed only when a policy first reads them.
///
/// Most policies never look at arguments; parsing JSON for every call would cost them all.
/// Arguments given as JSON bytes (a `json/plain` payload, a request body) are parsed on the
/// first [`get`](Args::get); bytes that are not JSON read as absent, so rules never judge bytes
/// they cannot read.
#[derive(Clone, Default)]
pub struct Args {
    raw: Option<Vec<u8>>,
    parsed: OnceLock<Option<Value>>,
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
            raw: Some(Vec::new()),
            parsed: OnceLock::from(None),
        }
    }

    /// Arguments as JSON bytes, parsed on first use; empty bytes mean none.
    pub fn from_json_bytes(bytes: Vec<u8>) -> Self {
        if bytes.is_empty() {
            return Self::none();
        }
        Self {
            raw: Some(bytes),
            parsed: OnceLock::new(),
        }
    }

    /// The arguments, parsing them now if they are still bytes.
    pub fn get(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| {
                self.raw
                    .as_deref()
                    .and_then(|raw| serde_json::from_slice(raw).ok())
            })
            .as_ref()
    }

    /// Whether the call carried arguments at all (parsed or not).
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
            (None, Some(raw)) => write!(f, "Args(<{} JSON bytes, unparsed>)", raw.len()),
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
        assert!(format!("{args:?}").contains("unparsed"));
        assert_eq!(
            args.get().and_then(|v| v.get("amount")),
            Some(&Value::from(5))
        );
        assert!(format!("{args:?}").contains("amount"));

        let garbage = Args::from_json_bytes(b"\x00\x01 not json".to_vec());
        assert_eq!(garbage.get(), None);
        assert!(!Args::from_json_bytes(Vec::new()).is_present());
    }
}
