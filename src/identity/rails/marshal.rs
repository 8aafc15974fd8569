//! A loader for Ruby `Marshal` 4.8 that reads plain data only, for Rails sessions written
//! with `cookies_serializer = :marshal` (or read by `:hybrid`).
//!
//! `Marshal.load` can instantiate any class, so nothing here ever names a class: objects,
//! structs, user types (`_dump`, `marshal_dump`), classes, modules, extended objects, String
//! or Hash subclasses, regexps and anything unknown are refused, never interpreted. What is
//! read: nil, true, false, integers (fixnums, and bignums that fit in 64 bits), floats,
//! strings and symbols (any encoding, made UTF-8, lossily if they are not), arrays, hashes
//! (a default value is read and dropped) and links to values already read.
//!
//! Parsing builds an arena in which a link (`@`) shares the node it points to, then the
//! JSON is written out with a budget, so shared values cannot multiply without bound. The
//! byte layout follows `marshal.c` (`r_object0`, `r_long`, `r_symreal`, `r_entry`).

use serde_json::{Map, Number, Value};

/// Containers (arrays, hashes) nested deeper than this are refused.
pub(crate) const MAX_DEPTH: usize = 64;
/// Nodes the JSON may hold once links are expanded: a cookie yields a few hundred.
const MAX_NODES: usize = 1 << 16;
/// String bytes the JSON may hold once links are expanded.
const MAX_STRING_BYTES: usize = 1 << 20;

/// Why Marshal data was refused. Messages name the structure, never the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MarshalError {
    #[error("not Ruby Marshal 4.8 data")]
    Version,
    #[error("the Marshal data ends early")]
    Truncated,
    #[error("the Marshal data has bytes after its value")]
    Trailing,
    #[error("Marshal type {0:?} is not plain data and is refused")]
    Refused(char),
    #[error("the Marshal data nests deeper than {MAX_DEPTH} containers")]
    TooDeep,
    #[error("the Marshal data expands beyond the size limit")]
    TooLarge,
    #[error("a Marshal length or count is negative or exceeds the data")]
    Length,
    #[error("a Marshal link points to no value, or to a value that contains it")]
    Link,
    #[error("a Marshal integer does not fit in 64 bits")]
    Range,
    #[error("a Marshal float is not a finite number")]
    Float,
    #[error("a Marshal hash key is not a string, symbol or integer")]
    Key,
    #[error("a Marshal instance variable name is not a symbol")]
    IvarName,
}

use MarshalError::{
    Float, IvarName, Key, Length, Link, Range, Refused, TooDeep, TooLarge, Trailing, Truncated,
};

/// The value `data` (a whole `Marshal.dump` output) holds, as JSON. Hash keys that are
/// integers become their decimal text, as `to_json` writes them.
pub(crate) fn load(data: &[u8]) -> Result<Value, MarshalError> {
    let body = data
        .strip_prefix(b"\x04\x08")
        .ok_or(MarshalError::Version)?;
    let mut reader = Reader {
        input: body,
        pos: 0,
        nodes: Vec::new(),
        symbols: Vec::new(),
        objects: Vec::new(),
    };
    let root = reader.value(0)?;
    // Marshal.dump never leaves bytes behind; extra bytes mean this is not one dump.
    if reader.pos != body.len() {
        return Err(Trailing);
    }
    let mut budget = Budget {
        nodes: MAX_NODES,
        bytes: MAX_STRING_BYTES,
    };
    reader.json(root, 0, &mut budget)
}

/// One parsed value. Children are indices into the arena, so a link is just a shared index.
enum Node {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Array(Vec<usize>),
    Hash(Vec<(usize, usize)>),
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    /// The symbol table, in the order `r_symreal` fills it: node indices, so a symlink
    /// shares the node as a link does.
    symbols: Vec<usize>,
    /// The object table (`r_entry`): node index, and whether the value is complete. A link
    /// to an incomplete one is a cycle.
    objects: Vec<(usize, bool)>,
}

struct Budget {
    nodes: usize,
    bytes: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, MarshalError> {
        let byte = *self.input.get(self.pos).ok_or(Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    fn bytes(&mut self, len: usize) -> Result<&[u8], MarshalError> {
        let end = self.pos.checked_add(len).ok_or(Truncated)?;
        let bytes = self.input.get(self.pos..end).ok_or(Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// `r_long`: one signed byte, either the value itself (offset by 5) or the count of
    /// little-endian bytes that follow; a negative count means a negative value.
    fn long(&mut self) -> Result<i64, MarshalError> {
        let c = self.byte()? as i8;
        match c {
            0 => Ok(0),
            5..=127 => Ok(i64::from(c) - 5),
            -128..=-5 => Ok(i64::from(c) + 5),
            1..=4 => {
                let mut x: u64 = 0;
                for (i, &b) in self.bytes(c as usize)?.iter().enumerate() {
                    x |= u64::from(b) << (8 * i);
                }
                Ok(x as i64)
            }
            _ => {
                // -1..=-4: start from all ones and overwrite the low bytes.
                let n = c.unsigned_abs() as usize;
                let mut x: u64 = u64::MAX;
                for (i, &b) in self.bytes(n)?.iter().enumerate() {
                    x &= !(0xff << (8 * i));
                    x |= u64::from(b) << (8 * i);
                }
                Ok(x as i64)
            }
        }
    }

    /// A length or count, checked against what is left (each unit takes at least
    /// `min_bytes`) before anything is allocated for it.
    fn count(&mut self, min_bytes: usize) -> Result<usize, MarshalError> {
        let n = usize::try_from(self.long()?).map_err(|_| Length)?;
        if n.checked_mul(min_bytes)
            .is_none_or(|need| need > self.remaining())
        {
            return Err(Length);
        }
        Ok(n)
    }

    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// `r_entry`: a new object-table slot for `node`, complete or not yet.
    fn enter(&mut self, node: usize, complete: bool) -> usize {
        self.objects.push((node, complete));
        self.objects.len() - 1
    }

    fn value(&mut self, depth: usize) -> Result<usize, MarshalError> {
        let tag = self.byte()?;
        let node = match tag {
            b'0' => self.push(Node::Nil),
            b'T' => self.push(Node::Bool(true)),
            b'F' => self.push(Node::Bool(false)),
            b'i' => {
                let n = self.long()?;
                self.push(Node::Int(n))
            }
            b'l' => {
                let node = self.bignum()?;
                let index = self.push(node);
                self.enter(index, true);
                index
            }
            b'f' => {
                let node = self.float()?;
                let index = self.push(node);
                self.enter(index, true);
                index
            }
            b'"' => self.string(false)?,
            b':' => self.symbol(false)?,
            b';' => self.symlink()?,
            // Instance variables: only the encoding of a string or symbol is plain data.
            b'I' => match self.byte()? {
                b'"' => self.string(true)?,
                b':' => self.symbol(true)?,
                other => return Err(Refused(other as char)),
            },
            b'[' => self.array(depth)?,
            b'{' => self.hash(depth, false)?,
            b'}' => self.hash(depth, true)?,
            b'@' => {
                let index = usize::try_from(self.long()?).map_err(|_| Link)?;
                match self.objects.get(index) {
                    Some(&(node, true)) => node,
                    _ => return Err(Link),
                }
            }
            other => return Err(Refused(other as char)),
        };
        Ok(node)
    }

    /// `l`: a sign, a count of 16-bit words, then the magnitude little-endian. Ruby writes
    /// integers beyond ±2**30 this way, so a large user id arrives as one.
    fn bignum(&mut self) -> Result<Node, MarshalError> {
        let negative = match self.byte()? {
            b'+' => false,
            b'-' => true,
            _ => return Err(Range),
        };
        let words = self.count(2)?;
        let bytes = self.bytes(words * 2)?;
        // High zero bytes are harmless; anything beyond 8 significant bytes is out of range.
        let significant = bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        if significant > 8 {
            return Err(Range);
        }
        let magnitude = bytes[..significant]
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if !negative {
            return Ok(Node::UInt(magnitude));
        }
        0i64.checked_sub_unsigned(magnitude)
            .map(Node::Int)
            .ok_or(Range)
    }

    /// `f`: the float as text ("1.5", "1e20", "-0"), or "nan"/"inf"/"-inf", which JSON
    /// cannot hold. Old Rubies appended mantissa bytes after a NUL; strtod stops there.
    fn float(&mut self) -> Result<Node, MarshalError> {
        let len = self.count(1)?;
        let text = self.bytes(len)?;
        let text = text.split(|&b| b == 0).next().unwrap_or_default();
        let number = std::str::from_utf8(text)
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .filter(|number| number.is_finite())
            .ok_or(Float)?;
        Ok(Node::Float(number))
    }

    /// `"`: the string is entered in the object table before its instance variables are
    /// read, as `r_object0` does, so later links count the same way.
    fn string(&mut self, ivars: bool) -> Result<usize, MarshalError> {
        let len = self.count(1)?;
        let text = String::from_utf8_lossy(self.bytes(len)?).into_owned();
        let index = self.push(Node::Str(text));
        self.enter(index, true);
        if ivars {
            self.ivars()?;
        }
        Ok(index)
    }

    /// `:`: symbols have their own table and never enter the object table; the symbol is
    /// registered before the names in its instance variables (`r_symreal`).
    fn symbol(&mut self, ivars: bool) -> Result<usize, MarshalError> {
        let len = self.count(1)?;
        let name = String::from_utf8_lossy(self.bytes(len)?).into_owned();
        let index = self.push(Node::Str(name));
        self.symbols.push(index);
        if ivars {
            self.ivars()?;
        }
        Ok(index)
    }

    /// `;`: a symbol already read.
    fn symlink(&mut self) -> Result<usize, MarshalError> {
        let index = usize::try_from(self.long()?).map_err(|_| Link)?;
        self.symbols.get(index).copied().ok_or(Link)
    }

    /// Instance variables after `I`: `:E`/`:encoding` and their values, read (they occupy
    /// table slots) and dropped, since the text is already UTF-8. The values Ruby writes
    /// there are true, false or an encoding name (a bare string, or a link to one); only
    /// such leaves are taken, which also keeps `I` from nesting.
    fn ivars(&mut self) -> Result<(), MarshalError> {
        let count = self.count(2)?;
        for _ in 0..count {
            match self.byte()? {
                b':' => self.symbol(false)?,
                b';' => self.symlink()?,
                _ => return Err(IvarName),
            };
            match self.input.get(self.pos) {
                Some(b'0' | b'T' | b'F' | b'i' | b'"' | b':' | b';' | b'@') => self.value(0)?,
                Some(&other) => return Err(Refused(other as char)),
                None => return Err(Truncated),
            };
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<usize, MarshalError> {
        let inner = deeper(depth)?;
        let len = self.count(1)?;
        let index = self.push(Node::Nil);
        let slot = self.enter(index, false);
        // Declared lengths are only checked against the bytes left: reserve modestly.
        let mut items = Vec::with_capacity(len.min(64));
        for _ in 0..len {
            items.push(self.value(inner)?);
        }
        self.nodes[index] = Node::Array(items);
        self.objects[slot].1 = true;
        Ok(index)
    }

    /// `{`, or `}` with a default value after the pairs: read (plain data only) and dropped,
    /// since it only answers lookups of missing keys.
    fn hash(&mut self, depth: usize, default: bool) -> Result<usize, MarshalError> {
        let inner = deeper(depth)?;
        let len = self.count(2)?;
        let index = self.push(Node::Nil);
        let slot = self.enter(index, false);
        let mut pairs = Vec::with_capacity(len.min(64));
        for _ in 0..len {
            let key = self.value(inner)?;
            let value = self.value(inner)?;
            pairs.push((key, value));
        }
        if default {
            self.value(inner)?;
        }
        self.nodes[index] = Node::Hash(pairs);
        self.objects[slot].1 = true;
        Ok(index)
    }

    /// Writes node `index` out as JSON, charging every node and string byte (again for each
    /// time a link repeats it) to `budget`.
    fn json(&self, index: usize, depth: usize, budget: &mut Budget) -> Result<Value, MarshalError> {
        budget.nodes = budget.nodes.checked_sub(1).ok_or(TooLarge)?;
        Ok(match &self.nodes[index] {
            Node::Nil => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(n) => Value::from(*n),
            Node::UInt(n) => Value::from(*n),
            Node::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Str(text) => {
                budget.bytes = budget.bytes.checked_sub(text.len()).ok_or(TooLarge)?;
                Value::String(text.clone())
            }
            Node::Array(items) => {
                let inner = deeper(depth)?;
                let mut out = Vec::with_capacity(items.len());
                for &item in items {
                    out.push(self.json(item, inner, budget)?);
                }
                Value::Array(out)
            }
            Node::Hash(pairs) => {
                let inner = deeper(depth)?;
                let mut out = Map::new();
                for &(key, value) in pairs {
                    let key = match &self.nodes[key] {
                        Node::Str(text) => {
                            budget.bytes = budget.bytes.checked_sub(text.len()).ok_or(TooLarge)?;
                            text.clone()
                        }
                        Node::Int(n) => n.to_string(),
                        Node::UInt(n) => n.to_string(),
                        _ => return Err(Key),
                    };
                    out.insert(key, self.json(value, inner, budget)?);
                }
                Value::Object(out)
            }
        })
    }
}

/// One container level down, refused past [`MAX_DEPTH`].
fn deeper(depth: usize) -> Result<usize, MarshalError> {
    if depth >= MAX_DEPTH {
        return Err(TooDeep);
    }
    Ok(depth + 1)
}

#[cfg(test)]
mod tests;
