//! PHP `serialize()` data read into JSON, for apps that keep their sessions in that format.
//!
//! Only plain data is read. Objects become a JSON object of their public properties and
//! their class is never looked at, so nothing like PHP's object injection can happen here.
//! References (`r:`/`R:`), `Serializable` payloads (`C:`) and enums (`E:`) are refused
//! rather than resolved: sessions that carry them are not worth the risk of a cyclic or
//! ambiguous result.
//!
//! The input may be hostile (a tampered session store), hence: no panics, depth bounded
//! by `MAX_DEPTH`, and every declared count or length is checked against the bytes left
//! before anything is allocated for it. Error messages give a byte offset, never content.

use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays and objects accepted; PHP's own default is far higher, but
/// session data never needs it and it bounds our recursion.
pub(crate) const MAX_DEPTH: usize = 64;

/// Smallest possible array entry, `i:0;N;`: a declared count above `remaining / 6` cannot
/// be honest, so it is refused before any allocation.
const MIN_ENTRY_LEN: usize = 6;

/// Why PHP-serialized data was not read. Offsets count bytes from the start of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PhpDataError {
    /// The data stops in the middle of a value.
    #[error("PHP data ends early at byte {offset}")]
    Truncated {
        /// Where more bytes were needed.
        offset: usize,
    },
    /// A byte that the format does not allow at that place.
    #[error("PHP data malformed at byte {offset}: expected {expected}")]
    Malformed {
        /// Where the unexpected byte is.
        offset: usize,
        /// What the format wanted there.
        expected: &'static str,
    },
    /// A valid PHP construct that is deliberately not read.
    #[error("PHP data at byte {offset}: {what} not supported")]
    Unsupported {
        /// Where the construct starts.
        offset: usize,
        /// Which construct.
        what: &'static str,
    },
    /// Arrays/objects nested deeper than 64.
    #[error("PHP data nested deeper than {} at byte {offset}", MAX_DEPTH)]
    TooDeep {
        /// Where the first too-deep container starts.
        offset: usize,
    },
    /// A declared length or count larger than what is left of the input.
    #[error("PHP data at byte {offset}: declared size exceeds the input")]
    Overrun {
        /// Where the length or count is.
        offset: usize,
    },
    /// An `i:` integer that does not fit in 64 bits (PHP would clamp it with a warning).
    #[error("PHP data at byte {offset}: integer out of range")]
    IntegerOutOfRange {
        /// Where the integer starts.
        offset: usize,
    },
    /// Bytes after a complete value.
    #[error("PHP data has trailing bytes at byte {offset}")]
    TrailingData {
        /// Where the extra bytes start.
        offset: usize,
    },
}

impl PhpDataError {
    /// The same error with its offset moved by `base`, for data parsed out of a larger buffer.
    pub(crate) fn shifted(mut self, base: usize) -> Self {
        let offset = match &mut self {
            Self::Truncated { offset }
            | Self::Malformed { offset, .. }
            | Self::Unsupported { offset, .. }
            | Self::TooDeep { offset }
            | Self::Overrun { offset }
            | Self::IntegerOutOfRange { offset }
            | Self::TrailingData { offset } => offset,
        };
        *offset = offset.saturating_add(base);
        self
    }
}

/// Reads `data` as exactly one PHP-serialized value. Unlike PHP, bytes after the value are
/// an error: they mean the data is not what we think it is.
pub(crate) fn unserialize(data: &[u8]) -> Result<Value, PhpDataError> {
    let (value, used) = unserialize_prefix(data)?;
    if used == data.len() {
        Ok(value)
    } else {
        Err(PhpDataError::TrailingData { offset: used })
    }
}

/// Reads one PHP-serialized value from the start of `data`; returns it and the bytes it took.
pub(crate) fn unserialize_prefix(data: &[u8]) -> Result<(Value, usize), PhpDataError> {
    let mut parser = Parser { data, pos: 0 };
    let value = parser.value(0)?;
    Ok((value, parser.pos))
}

/// An array key or property name as PHP has it, before it becomes a JSON key.
enum Key {
    Int(i64),
    Str(Vec<u8>),
}

impl Key {
    /// PHP stores canonical decimal string keys (`"0"`, `"-5"`, not `"01"` or `"-0"`) as
    /// integers, which decides whether an array is a list; mirror that.
    fn normalized(self) -> Self {
        match self {
            Self::Str(bytes) if is_canonical_int(&bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .map_or(Self::Str(bytes), Self::Int),
            key => key,
        }
    }

    fn into_json_key(self) -> String {
        match self {
            Self::Int(n) => n.to_string(),
            Self::Str(bytes) => lossy(&bytes),
        }
    }
}

fn is_canonical_int(bytes: &[u8]) -> bool {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    match digits {
        [b'0'] => bytes.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn truncated(&self) -> PhpDataError {
        PhpDataError::Truncated {
            offset: self.data.len(),
        }
    }

    /// Truncated at the end of the input, malformed anywhere else.
    fn unexpected(&self, expected: &'static str) -> PhpDataError {
        if self.pos >= self.data.len() {
            self.truncated()
        } else {
            PhpDataError::Malformed {
                offset: self.pos,
                expected,
            }
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), PhpDataError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        self.data.get(start..self.pos).unwrap_or_default()
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], PhpDataError> {
        let end = self.pos.checked_add(len).ok_or_else(|| self.truncated())?;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| self.truncated())?;
        self.pos = end;
        Ok(bytes)
    }

    /// `[0-9]+` as a u64; `None` when it does not fit (the caller picks the error).
    fn digits(&mut self, expected: &'static str) -> Result<Option<u64>, PhpDataError> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(self.unexpected(expected));
        }
        Ok(digits.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        }))
    }

    /// A declared length or count, refused when that many `unit`-byte items could not fit
    /// in what is left of the input.
    fn size(&mut self, unit: usize) -> Result<usize, PhpDataError> {
        let start = self.pos;
        let n = self
            .digits("a length")?
            .and_then(|n| usize::try_from(n).ok());
        n.filter(|&n| n <= self.remaining() / unit)
            .ok_or(PhpDataError::Overrun { offset: start })
    }

    /// `i:` payload: `[+-]?[0-9]+`, which must fit an i64.
    fn integer(&mut self) -> Result<i64, PhpDataError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let magnitude = self.digits("digits")?;
        let n = if negative {
            magnitude.and_then(|m| 0i64.checked_sub_unsigned(m))
        } else {
            magnitude.and_then(|m| i64::try_from(m).ok())
        };
        n.ok_or(PhpDataError::IntegerOutOfRange { offset: start })
    }

    /// `d:` payload. PHP writes `NAN`, `INF`, `-INF` for non-finite values; JSON has none,
    /// so they (and exponents too big for f64) become null.
    fn float(&mut self) -> Result<Value, PhpDataError> {
        let start = self.pos;
        let token = self.take_while(|b| b.is_ascii_digit() || b".+-eEINAF".contains(&b));
        if self.pos >= self.data.len() {
            return Err(self.truncated());
        }
        if matches!(token, b"NAN" | b"INF" | b"-INF") {
            return Ok(Value::Null);
        }
        let malformed = PhpDataError::Malformed {
            offset: start,
            expected: "a number",
        };
        if !is_php_float(token) {
            return Err(malformed);
        }
        // Validated above to PHP's grammar, which Rust's parser accepts as is.
        let number: f64 = std::str::from_utf8(token)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(malformed)?;
        Ok(Number::from_f64(number).map_or(Value::Null, Value::Number))
    }

    /// `s:<len>:"<bytes>"` (or `S:`, escaped: each of the `len` bytes is literal or `\` and
    /// two hex digits) after its tag; the caller reads the `;`.
    fn string(&mut self, escaped: bool) -> Result<Vec<u8>, PhpDataError> {
        self.expect(b':', "':'")?;
        let len = self.size(1)?;
        self.expect(b':', "':'")?;
        self.expect(b'"', "'\"'")?;
        if !escaped {
            let bytes = self.take(len)?.to_vec();
            self.expect(b'"', "'\"' at the declared string end")?;
            return Ok(bytes);
        }
        let mut bytes = Vec::with_capacity(len.min(4096));
        for _ in 0..len {
            let mut byte = self.peek().ok_or_else(|| self.truncated())?;
            self.pos += 1;
            if byte == b'\\' {
                byte = 0;
                for _ in 0..2 {
                    let digit = self.peek().and_then(|b| char::from(b).to_digit(16));
                    let digit = digit.ok_or_else(|| self.unexpected("a hex digit"))?;
                    self.pos += 1;
                    byte = (byte << 4) | digit as u8;
                }
            }
            bytes.push(byte);
        }
        self.expect(b'"', "'\"' at the declared string end")?;
        Ok(bytes)
    }

    /// An array key or property name: only `i:`, `s:` and `S:` are valid there.
    fn key(&mut self) -> Result<Key, PhpDataError> {
        let tag = self.peek();
        if !matches!(tag, Some(b'i' | b's' | b'S')) {
            return Err(self.unexpected("an integer or string key"));
        }
        self.pos += 1;
        let key = if tag == Some(b'i') {
            self.expect(b':', "':'")?;
            Key::Int(self.integer()?)
        } else {
            Key::Str(self.string(tag == Some(b'S'))?)
        };
        self.expect(b';', "';'")?;
        Ok(key)
    }

    /// `<n>:{key value ...}` after an `a:` or an object's class name.
    fn entries(&mut self, depth: usize) -> Result<Vec<(Key, Value)>, PhpDataError> {
        let count = self.size(MIN_ENTRY_LEN)?;
        self.expect(b':', "':'")?;
        self.expect(b'{', "'{'")?;
        // Declared counts are only checked against the bytes left: reserve modestly, so 64
        // nested maxima cannot reserve gigabytes.
        let mut entries = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let key = self.key()?;
            entries.push((key, self.value(depth + 1)?));
        }
        self.expect(b'}', "'}' after the declared entries")?;
        Ok(entries)
    }

    fn value(&mut self, depth: usize) -> Result<Value, PhpDataError> {
        let start = self.pos;
        let tag = self.peek().ok_or_else(|| self.truncated())?;
        self.pos += 1;
        let unsupported = |what| {
            Err(PhpDataError::Unsupported {
                offset: start,
                what,
            })
        };
        if matches!(tag, b'a' | b'O') && depth >= MAX_DEPTH {
            return Err(PhpDataError::TooDeep { offset: start });
        }
        let value = match tag {
            b'N' => Value::Null,
            b'b' => {
                self.expect(b':', "':'")?;
                let value = match self.peek() {
                    Some(b'0') => false,
                    Some(b'1') => true,
                    _ => return Err(self.unexpected("0 or 1")),
                };
                self.pos += 1;
                Value::Bool(value)
            }
            b'i' => {
                self.expect(b':', "':'")?;
                Value::from(self.integer()?)
            }
            b'd' => {
                self.expect(b':', "':'")?;
                self.float()?
            }
            b's' | b'S' => Value::String(lossy(&self.string(tag == b'S')?)),
            b'a' => {
                self.expect(b':', "':'")?;
                let entries = self.entries(depth)?;
                // Closed here: containers end with '}', not ';'.
                return Ok(array_to_json(entries));
            }
            b'O' => {
                // The class name is read past, never used.
                self.string(false)?;
                self.expect(b':', "':'")?;
                let entries = self.entries(depth)?;
                return Ok(object_to_json(entries));
            }
            b'C' => return unsupported("custom-serialized object (C:)"),
            b'E' => return unsupported("enum (E:)"),
            b'r' | b'R' => return unsupported("reference (r:/R:)"),
            _ => {
                self.pos = start;
                return Err(self.unexpected("a value type"));
            }
        };
        self.expect(b';', "';'")?;
        Ok(value)
    }
}

/// PHP's float grammar: `[+-]?` then digits with an optional `.` (a digit on at least one
/// side), then an optional `[eE][+-]?digits`. Stricter than Rust's parser (no `inf`, `nan`).
fn is_php_float(token: &[u8]) -> bool {
    let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let token = unsigned(token);
    let (mantissa, exponent) = match token.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => (token.get(..at).unwrap_or_default(), token.get(at + 1..)),
        None => (token, None),
    };
    if let Some(exponent) = exponent {
        let exponent = unsigned(exponent);
        if exponent.is_empty() || !all_digits(exponent) {
            return false;
        }
    }
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (
            mantissa.get(..at).unwrap_or_default(),
            mantissa.get(at + 1..).unwrap_or_default(),
        ),
        None => (mantissa, &[][..]),
    };
    !(int.is_empty() && frac.is_empty()) && all_digits(int) && all_digits(frac)
}

/// Drops one leading sign.
fn unsigned(s: &[u8]) -> &[u8] {
    s.strip_prefix(b"-").or(s.strip_prefix(b"+")).unwrap_or(s)
}

/// A PHP array is a list when its keys are exactly 0..n-1 in order (`array_is_list`);
/// anything else is a map, where a repeated key keeps its last value as in PHP.
fn array_to_json(entries: Vec<(Key, Value)>) -> Value {
    let entries: Vec<_> = entries
        .into_iter()
        .map(|(k, v)| (k.normalized(), v))
        .collect();
    let is_list = entries
        .iter()
        .enumerate()
        .all(|(i, (key, _))| matches!(key, Key::Int(n) if usize::try_from(*n) == Ok(i)));
    if is_list {
        Value::Array(entries.into_iter().map(|(_, v)| v).collect())
    } else {
        Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.into_json_key(), v))
                .collect(),
        )
    }
}

/// Public properties only: PHP mangles private (`\0Class\0name`) and protected
/// (`\0*\0name`) names with a leading NUL, and those are the app's internals.
fn object_to_json(entries: Vec<(Key, Value)>) -> Value {
    let public = entries
        .into_iter()
        .filter(|(key, _)| !matches!(key, Key::Str(name) if name.first() == Some(&0)));
    let map: Map<String, Value> = public.map(|(k, v)| (k.into_json_key(), v)).collect();
    Value::Object(map)
}

#[cfg(test)]
mod tests;
