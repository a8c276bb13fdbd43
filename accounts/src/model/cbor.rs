//! The part of CBOR (RFC 8949) that WebAuthn's attestation objects and COSE keys use, read
//! strictly: definite lengths only, bounded depth, every length checked against what is left
//! before anything is allocated. Anything else is refused, never guessed at.

/// A decoded data item.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Unsigned(u64),
    /// A negative integer: the value is `-1 - n`.
    Negative(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Bool(bool),
    Null,
    /// A float, kept only as read (no WebAuthn field is one).
    Float,
}

impl Value {
    /// The integer, if this is one that fits an `i64`.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Value::Unsigned(n) => i64::try_from(n).ok(),
            Value::Negative(n) => i64::try_from(n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The value at integer key `key` of a map.
    pub fn get_int(&self, key: i64) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_int() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at text key `key` of a map.
    pub fn get_text(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why bytes are not the CBOR this reader takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    #[error("CBOR ends early")]
    Truncated,
    #[error("CBOR nests too deep")]
    TooDeep,
    #[error("CBOR uses a form WebAuthn does not (indefinite length, tag or reserved value)")]
    Unsupported,
    #[error("CBOR text is not UTF-8")]
    BadText,
    #[error("bytes follow the CBOR item")]
    TrailingBytes,
}

const MAX_DEPTH: usize = 8;

/// Decodes exactly one item filling all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value, CborError> {
    let (value, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(CborError::TrailingBytes);
    }
    Ok(value)
}

/// Decodes the one item at the start of `bytes`: it and how many bytes it took.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize), CborError> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.item(0)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        let end = self.pos.checked_add(n).ok_or(CborError::Truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or(CborError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn argument(&mut self, info: u8) -> Result<u64, CborError> {
        Ok(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => {
                let b = self.take(2)?;
                u64::from(u16::from_be_bytes([b[0], b[1]]))
            }
            26 => {
                let b = self.take(4)?;
                u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            27 => {
                let b = self.take(8)?;
                u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            _ => return Err(CborError::Unsupported),
        })
    }

    /// A length that cannot be more than what is left (each element takes at least a byte).
    fn length(&mut self, info: u8) -> Result<usize, CborError> {
        let n = self.argument(info)?;
        let left = self.bytes.len() - self.pos;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= left)
            .ok_or(CborError::Truncated)
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let initial = self.take(1)?[0];
        let (major, info) = (initial >> 5, initial & 0x1f);
        Ok(match major {
            0 => Value::Unsigned(self.argument(info)?),
            1 => Value::Negative(self.argument(info)?),
            2 => {
                let n = self.length(info)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            3 => {
                let n = self.length(info)?;
                let text = std::str::from_utf8(self.take(n)?).map_err(|_| CborError::BadText)?;
                Value::Text(text.to_owned())
            }
            4 => {
                let n = self.length(info)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Value::Array(items)
            }
            5 => {
                let n = self.length(info)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.item(depth + 1)?;
                    let value = self.item(depth + 1)?;
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            7 => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                25 => {
                    self.take(2)?;
                    Value::Float
                }
                26 => {
                    self.take(4)?;
                    Value::Float
                }
                27 => {
                    self.take(8)?;
                    Value::Float
                }
                _ => return Err(CborError::Unsupported),
            },
            // Tags (6) are not used by WebAuthn.
            _ => return Err(CborError::Unsupported),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cose_key_map_decodes() {
        // {1: 2, 3: -7, -1: 1, -2: h'0102'}
        let bytes = [
            0xa4, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x42, 0x01, 0x02,
        ];
        let value = decode(&bytes).unwrap();
        assert_eq!(value.get_int(1).and_then(Value::as_int), Some(2));
        assert_eq!(value.get_int(3).and_then(Value::as_int), Some(-7));
        assert_eq!(
            value.get_int(-2).and_then(Value::as_bytes),
            Some(&[1u8, 2][..])
        );
    }

    #[test]
    fn lengths_past_the_end_and_deep_nesting_are_refused_without_allocating() {
        // A byte string claiming 2^63 bytes.
        let huge = [0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode(&huge), Err(CborError::Truncated));
        assert_eq!(decode(&[0x81; 64]), Err(CborError::TooDeep));
        assert_eq!(decode(&[0x5f]), Err(CborError::Unsupported));
        assert_eq!(decode(&[0xc0, 0x01]), Err(CborError::Unsupported));
        assert_eq!(decode(&[0x01, 0x01]), Err(CborError::TrailingBytes));
        assert_eq!(decode(&[]), Err(CborError::Truncated));
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panicking() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let len = (seed % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
    }
}
