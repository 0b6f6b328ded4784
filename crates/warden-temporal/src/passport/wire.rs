//! Just enough of the protobuf wire format to replace one map entry deep inside a message
//! while every other byte stays as it was.

use std::ops::Range;

/// Why a message cannot be edited: it is not valid protobuf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a protobuf message: {0}")]
pub(crate) struct WireError(&'static str);

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf
            .get(*pos)
            .ok_or(WireError("a varint runs past the end"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError("a varint longer than ten bytes"))
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One field of a message: its number, wire type, the whole field's bytes (tag included) and,
/// for a length-delimited field, where its content is.
pub(crate) struct Field<'a> {
    pub(crate) number: u64,
    pub(crate) raw: &'a [u8],
    pub(crate) content: Option<&'a [u8]>,
}

/// The fields of `message`, in order.
pub(crate) fn fields(message: &[u8]) -> impl Iterator<Item = Result<Field<'_>, WireError>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= message.len() {
            return None;
        }
        let start = pos;
        let field = (|| {
            let tag = varint(message, &mut pos)?;
            let number = tag >> 3;
            if number == 0 {
                return Err(WireError("field number 0"));
            }
            let mut content: Option<Range<usize>> = None;
            match (tag & 7) as u8 {
                VARINT => {
                    varint(message, &mut pos)?;
                }
                I64 => pos += 8,
                I32 => pos += 4,
                LEN => {
                    let len = usize::try_from(varint(message, &mut pos)?)
                        .map_err(|_| WireError("a length over the address space"))?;
                    content = Some(pos..pos.saturating_add(len));
                    pos = pos.saturating_add(len);
                }
                _ => return Err(WireError("a group or an unknown wire type")),
            }
            if pos > message.len() {
                return Err(WireError("a field runs past the end"));
            }
            Ok(Field {
                number,
                raw: &message[start..pos],
                content: content.map(|range| &message[range]),
            })
        })();
        if field.is_err() {
            // Stop after the first error: the rest cannot be framed.
            pos = message.len();
        }
        Some(field)
    })
}

/// Appends a length-delimited field.
pub(crate) fn put_len(out: &mut Vec<u8>, number: u64, content: &[u8]) {
    put_varint(out, (number << 3) | u64::from(LEN));
    put_varint(out, content.len() as u64);
    out.extend_from_slice(content);
}

/// `content` nested in the fields of `path`, outermost first.
pub(crate) fn nest(path: &[u64], content: Vec<u8>) -> Vec<u8> {
    path.iter().rev().fold(content, |inner, &number| {
        let mut out = Vec::with_capacity(inner.len() + 6);
        put_len(&mut out, number, &inner);
        out
    })
}

/// `message` with every entry under `key` removed from each map reached by `path` (the last
/// number is the map field); the bytes of every other field are kept as they were.
pub(crate) fn remove_map_entry(
    message: &[u8],
    path: &[u64],
    key: &str,
) -> Result<Vec<u8>, WireError> {
    let Some((&number, rest)) = path.split_first() else {
        return Ok(message.to_vec());
    };
    let mut out = Vec::with_capacity(message.len());
    let mut changed = false;
    for field in fields(message) {
        let field = field?;
        match field.content {
            Some(content) if field.number == number => {
                let kept = if rest.is_empty() {
                    if entry_key(content)? == Some(key.as_bytes()) {
                        changed = true;
                        continue;
                    }
                    None
                } else {
                    let edited = remove_map_entry(content, rest, key)?;
                    (edited != content).then_some(edited)
                };
                match kept {
                    Some(edited) => {
                        changed = true;
                        put_len(&mut out, number, &edited);
                    }
                    None => out.extend_from_slice(field.raw),
                }
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    Ok(if changed { out } else { message.to_vec() })
}

/// The key (field 1) of a map entry; the last one counts, as in a parser.
fn entry_key(entry: &[u8]) -> Result<Option<&[u8]>, WireError> {
    let mut key = None;
    for field in fields(entry) {
        let field = field?;
        if field.number == 1 {
            key = field.content;
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut entry = Vec::new();
        put_len(&mut entry, 1, key.as_bytes());
        put_len(&mut entry, 2, value);
        let mut field = Vec::new();
        put_len(&mut field, 1, &entry);
        field
    }

    #[test]
    fn removing_an_entry_keeps_every_other_byte() {
        // field 1 varint 150, then a header (field 16) with two entries, then field 3.
        let mut message = vec![0x08, 0x96, 0x01];
        let header = [entry("trace", b"t"), entry("warden-passport", b"forged")].concat();
        put_len(&mut message, 16, &header);
        put_len(&mut message, 3, b"tail");
        let edited = remove_map_entry(&message, &[16, 1], "warden-passport").unwrap();
        let mut expected = vec![0x08, 0x96, 0x01];
        put_len(&mut expected, 16, &entry("trace", b"t"));
        put_len(&mut expected, 3, b"tail");
        assert_eq!(edited, expected);
        // Nothing to remove: the very same bytes.
        assert_eq!(
            remove_map_entry(&expected, &[16, 1], "warden-passport").unwrap(),
            expected
        );
    }

    #[test]
    fn every_occurrence_of_a_repeated_path_is_edited() {
        let mut message = Vec::new();
        put_len(&mut message, 3, &nest(&[3], entry("warden-passport", b"a")));
        put_len(&mut message, 3, &nest(&[3], entry("warden-passport", b"b")));
        let edited = remove_map_entry(&message, &[3, 3, 1], "warden-passport").unwrap();
        let mut expected = Vec::new();
        put_len(&mut expected, 3, &nest(&[3], Vec::new()));
        put_len(&mut expected, 3, &nest(&[3], Vec::new()));
        assert_eq!(edited, expected);
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert!(remove_map_entry(&[0x0a, 0x05, 0x01], &[1, 1], "k").is_err());
        assert!(remove_map_entry(&[0x0b], &[1, 1], "k").is_err());
        assert!(remove_map_entry(&[0x80; 11], &[1, 1], "k").is_err());
    }
}
