use std::sync::Arc;

use bytes::Bytes;
use warden_core::Operation;

use crate::{
    grpc::{DecompressError, Encoding, HEADER_LEN, accepted_encodings},
    map::MethodSpec,
    rejection::{Code, Rejection},
};

/// Decodes one whole frame (prefix included) of a call to `spec` into its operation.
pub(crate) fn decode_frame(
    spec: &MethodSpec,
    encoding: &Result<Encoding, String>,
    max_message_size: usize,
    frame: &Bytes,
    compressed: bool,
) -> Result<Arc<Operation>, Rejection> {
    let message = message_of(encoding, max_message_size, frame, compressed)?;
    spec.decode_shared(&message)
        .map_err(|e| Rejection::new(Code::InvalidArgument, e.to_string()))
}

/// The message in one whole frame (prefix included), decompressed when it is flagged so.
pub(crate) fn message_of(
    encoding: &Result<Encoding, String>,
    max_message_size: usize,
    frame: &Bytes,
    compressed: bool,
) -> Result<Bytes, Rejection> {
    let payload = &frame[HEADER_LEN..];
    if !compressed {
        // Not copied: arguments the extractor keeps are a slice of the frame.
        return Ok(frame.slice(HEADER_LEN..));
    }
    let encoding = match encoding {
        Ok(Encoding::Identity) => {
            return Err(Rejection::new(
                Code::InvalidArgument,
                "the message is flagged compressed but the call declares no grpc-encoding",
            ));
        }
        // Without a compression feature, `Identity` is the only encoding.
        #[cfg_attr(
            not(any(feature = "gzip", feature = "deflate", feature = "zstd")),
            allow(unreachable_patterns)
        )]
        Ok(encoding) => *encoding,
        Err(name) => return Err(unsupported_encoding(name)),
    };
    encoding
        .decompress(payload, max_message_size)
        .map_err(|e| match e {
            DecompressError::TooLarge => too_large(max_message_size, "decompressed "),
            DecompressError::NoEncoding => {
                Rejection::new(Code::Internal, "decompression without an encoding")
            }
            DecompressError::Corrupt(reason) => Rejection::new(
                Code::InvalidArgument,
                format!("cannot decompress the message: {reason}"),
            ),
        })
}

#[cold]
pub(crate) fn unsupported_encoding(name: &str) -> Rejection {
    Rejection::new(
        Code::Unimplemented,
        format!(
            "grpc-encoding `{name}` is not supported; supported: {}",
            accepted_encodings()
        ),
    )
}

#[cold]
pub(crate) fn too_large(limit: usize, what: &str) -> Rejection {
    Rejection::new(
        Code::ResourceExhausted,
        format!("the {what}message is larger than the limit of {limit} bytes"),
    )
}

#[cold]
pub(crate) fn announced_too_large(len: usize, limit: usize) -> Rejection {
    Rejection::new(
        Code::ResourceExhausted,
        format!("the message prefix announces {len} bytes, over the limit of {limit} bytes"),
    )
}

#[cold]
pub(crate) fn truncated(have: usize, need: Option<usize>) -> Rejection {
    let message = match need {
        Some(need) => format!(
            "truncated message: the prefix announces {need} bytes but the body ended after {have}",
            need = need - HEADER_LEN,
            have = have.saturating_sub(HEADER_LEN)
        ),
        None => format!("truncated message prefix: the body ended after {have} of 5 prefix bytes"),
    };
    Rejection::new(Code::InvalidArgument, message)
}
