//! The gRPC wire: method paths, length-prefixed frames, message encodings and content types.

mod content_type;
mod encoding;
mod frame;
mod path;

pub(crate) use content_type::{GrpcContentType, classify_content_type};
pub(crate) use encoding::{DecompressError, Encoding, accepted as accepted_encodings};
pub(crate) use frame::{FrameHeader, HEADER_LEN};
pub(crate) use path::MethodPath;
