use std::io::Read;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};

/// A `grpc-encoding` Warden can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    #[cfg(feature = "gzip")]
    Gzip,
    #[cfg(feature = "deflate")]
    Deflate,
    #[cfg(feature = "zstd")]
    Zstd,
}

/// The encodings this build reads, as sent in `grpc-accept-encoding`.
pub(crate) fn accepted() -> String {
    let names: &[&str] = &[
        "identity",
        #[cfg(feature = "gzip")]
        "gzip",
        #[cfg(feature = "deflate")]
        "deflate",
        #[cfg(feature = "zstd")]
        "zstd",
    ];
    names.join(",")
}

impl Encoding {
    /// The encoding a request declares. `Err` carries the unreadable name.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Self, String> {
        // A static name: looking up a `&str` would parse and hash the name on every call.
        static GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
        let Some(value) = headers.get(&GRPC_ENCODING) else {
            return Ok(Self::Identity);
        };
        let name = value
            .to_str()
            .map_err(|_| "a non-ASCII grpc-encoding".to_owned())?
            .trim();
        match name {
            "identity" => Ok(Self::Identity),
            #[cfg(feature = "gzip")]
            "gzip" => Ok(Self::Gzip),
            #[cfg(feature = "deflate")]
            "deflate" => Ok(Self::Deflate),
            #[cfg(feature = "zstd")]
            "zstd" => Ok(Self::Zstd),
            other => Err(other.to_owned()),
        }
    }

    /// Decompresses one message, refusing to produce more than `limit` bytes.
    // Without a compression feature only `Identity` exists, and it never decompresses.
    #[cfg_attr(
        not(any(feature = "gzip", feature = "deflate", feature = "zstd")),
        allow(unused_variables, unreachable_code)
    )]
    pub(crate) fn decompress(self, data: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
        let reader: Box<dyn Read + '_> = match self {
            Self::Identity => return Err(DecompressError::NoEncoding),
            #[cfg(feature = "gzip")]
            Self::Gzip => Box::new(flate2::read::GzDecoder::new(data)),
            // gRPC's "deflate" is the zlib format (RFC 1950), as grpc-java and tonic write it.
            #[cfg(feature = "deflate")]
            Self::Deflate => Box::new(flate2::read::ZlibDecoder::new(data)),
            #[cfg(feature = "zstd")]
            Self::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(data)
                    .map_err(|e| DecompressError::Corrupt(e.to_string()))?,
            ),
        };
        let mut out = Vec::with_capacity(data.len().saturating_mul(2).min(limit));
        // Read one byte past the limit so an over-long message is detected, not truncated.
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| DecompressError::Corrupt(e.to_string()))?;
        if out.len() > limit {
            return Err(DecompressError::TooLarge);
        }
        Ok(out.into())
    }
}

#[derive(Debug)]
pub(crate) enum DecompressError {
    /// The compressed flag was set but the call declared no encoding.
    NoEncoding,
    TooLarge,
    Corrupt(String),
}
