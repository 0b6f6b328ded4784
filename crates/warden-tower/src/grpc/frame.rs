/// The 5-byte prefix of every gRPC message: a compressed flag and a big-endian length.
pub(crate) const HEADER_LEN: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) compressed: bool,
    pub(crate) len: usize,
}

impl FrameHeader {
    /// Reads a header from the first five bytes of `buf`; `None` until five bytes are there.
    pub(crate) fn parse(buf: &[u8]) -> Result<Option<Self>, String> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let compressed = match header[0] {
            0 => false,
            1 => true,
            flag => return Err(format!("invalid compressed flag {flag} in message prefix")),
        };
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        Ok(Some(Self { compressed, len }))
    }

    /// The length of the whole frame, prefix included.
    pub(crate) fn frame_len(self) -> usize {
        HEADER_LEN + self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_needs_five_bytes_and_a_valid_flag() {
        assert_eq!(FrameHeader::parse(&[0, 0, 0]), Ok(None));
        assert_eq!(
            FrameHeader::parse(&[1, 0, 0, 1, 0, 9]),
            Ok(Some(FrameHeader {
                compressed: true,
                len: 256
            }))
        );
        assert!(FrameHeader::parse(&[2, 0, 0, 0, 0]).is_err());
    }
}
