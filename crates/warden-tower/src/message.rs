//! One gRPC request message, read from its frame and framed again: for a layer behind Warden
//! that must change an allowed call's message (as `warden proxy` writes a call passport into
//! a Temporal request) with the limits and encodings Warden's classification applies.
//!
//! ```
//! use bytes::Bytes;
//! use http::HeaderMap;
//! use warden_tower::message;
//!
//! let framed = message::frame(b"\x0a\x06orders");
//! let read = message::unframe(&HeaderMap::new(), &framed, 1024).unwrap();
//! assert_eq!(&read[..], b"\x0a\x06orders");
//! // A frame with a second message, or a short one, is not one message.
//! let two = Bytes::from([&framed[..], &framed[..]].concat());
//! assert!(message::unframe(&HeaderMap::new(), &two, 1024).is_err());
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;

use crate::{
    classify::decode::{announced_too_large, message_of, truncated},
    grpc::{Encoding, FrameHeader, HEADER_LEN},
    rejection::{Code, Rejection},
};

/// The message in `framed`, which must hold exactly one whole frame (prefix included),
/// decompressed as the call's `grpc-encoding` header says when the frame is flagged
/// compressed, and at most `max_message_size` bytes either way. Each failure is the
/// [`Rejection`] Warden's classification gives the same input.
pub fn unframe(
    headers: &HeaderMap,
    framed: &Bytes,
    max_message_size: usize,
) -> Result<Bytes, Rejection> {
    let header = match FrameHeader::parse(framed) {
        Ok(Some(header)) => header,
        Ok(None) => return Err(truncated(framed.len(), None)),
        Err(reason) => return Err(Rejection::new(Code::InvalidArgument, reason)),
    };
    if header.len > max_message_size {
        return Err(announced_too_large(header.len, max_message_size));
    }
    match framed.len().cmp(&header.frame_len()) {
        std::cmp::Ordering::Less => return Err(truncated(framed.len(), Some(header.frame_len()))),
        std::cmp::Ordering::Greater => {
            return Err(Rejection::new(
                Code::InvalidArgument,
                "the request carries more than one message",
            ));
        }
        std::cmp::Ordering::Equal => {}
    }
    message_of(
        &Encoding::from_headers(headers),
        max_message_size,
        framed,
        header.compressed,
    )
}

/// `message` as one uncompressed frame. A compressed call may carry it: the flag of each
/// frame says whether that frame is compressed.
pub fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(HEADER_LEN + message.len());
    framed.put_u8(0);
    // Messages over 4 GiB cannot pass Warden's size limit.
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(message);
    framed.freeze()
}
