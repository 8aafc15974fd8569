//! deflate, zlib and gzip through flate2's low-level `Decompress`, so that output is taken
//! a slice at a time and what the inflater holds back can be drained without more input.
//! gzip's framing (RFC 1952: a header, then a CRC-32 and size trailer, members one after
//! another) is read here.

use std::io;

use flate2::{Crc, Decompress, FlushDecompress, Status};

use super::{Input, Progress};

/// The longest gzip header taken (10 fixed bytes, an extra field, a file name, a comment):
/// servers send 10 bytes; this only bounds what a hostile one could make us hold.
const MAX_GZIP_HEADER: usize = 64 * 1024;

pub(super) struct Inflate {
    inflate: Decompress,
    gzip: Option<Gzip>,
}

struct Gzip {
    stage: Stage,
    crc: Crc,
}

enum Stage {
    /// A member's header; its bytes so far when it spans chunks.
    Header(Vec<u8>),
    Body,
    /// The CRC-32 and size, and how many of their 8 bytes arrived.
    Trailer([u8; 8], usize),
    /// After a member: the end of the body, or another member.
    Between,
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "truncated deflate stream")
}

impl Inflate {
    pub(super) fn gzip() -> Self {
        Inflate {
            inflate: Decompress::new(false),
            gzip: Some(Gzip {
                stage: Stage::Header(Vec::new()),
                crc: Crc::new(),
            }),
        }
    }

    pub(super) fn zlib() -> Self {
        Inflate {
            inflate: Decompress::new(true),
            gzip: None,
        }
    }

    pub(super) fn raw() -> Self {
        Inflate {
            inflate: Decompress::new(false),
            gzip: None,
        }
    }

    /// Decodes `input` into `out[*filled..]` until `out` is full, the input runs out, or
    /// the stream ends.
    pub(super) fn fill(
        &mut self,
        input: &mut Input,
        out: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<Progress> {
        let Some(gzip) = &mut self.gzip else {
            return body(&mut self.inflate, None, input, out, filled);
        };
        loop {
            match &mut gzip.stage {
                Stage::Header(seen) => {
                    if !header(seen, input)? {
                        return Ok(Progress::More);
                    }
                    gzip.stage = Stage::Body;
                }
                Stage::Body => {
                    match body(&mut self.inflate, Some(&mut gzip.crc), input, out, filled)? {
                        Progress::End => gzip.stage = Stage::Trailer([0; 8], 0),
                        Progress::More => return Ok(Progress::More),
                    }
                }
                Stage::Trailer(bytes, n) => {
                    let take = (8 - *n).min(input.buf.len());
                    bytes[*n..*n + take].copy_from_slice(&input.buf[..take]);
                    input.consume(take);
                    *n += take;
                    if *n < 8 {
                        return if input.eof {
                            Err(truncated())
                        } else {
                            Ok(Progress::More)
                        };
                    }
                    let [c0, c1, c2, c3, s0, s1, s2, s3] = *bytes;
                    if u32::from_le_bytes([c0, c1, c2, c3]) != gzip.crc.sum()
                        || u32::from_le_bytes([s0, s1, s2, s3]) != gzip.crc.amount()
                    {
                        return Err(invalid("gzip checksum mismatch"));
                    }
                    gzip.stage = Stage::Between;
                }
                Stage::Between if !input.buf.is_empty() => {
                    self.inflate.reset(false);
                    gzip.crc.reset();
                    gzip.stage = Stage::Header(Vec::new());
                }
                Stage::Between if input.eof => return Ok(Progress::End),
                Stage::Between => return Ok(Progress::More),
            }
        }
    }
}

/// Inflates into `out[*filled..]`, updating the gzip CRC if any.
fn body(
    inflate: &mut Decompress,
    mut crc: Option<&mut Crc>,
    input: &mut Input,
    out: &mut [u8],
    filled: &mut usize,
) -> io::Result<Progress> {
    loop {
        let (was_in, was_out) = (inflate.total_in(), inflate.total_out());
        let status = inflate
            .decompress(&input.buf, &mut out[*filled..], FlushDecompress::None)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let consumed = (inflate.total_in() - was_in) as usize;
        let produced = (inflate.total_out() - was_out) as usize;
        if let Some(crc) = crc.as_deref_mut() {
            crc.update(&out[*filled..*filled + produced]);
        }
        input.consume(consumed);
        *filled += produced;
        match status {
            Status::StreamEnd => return Ok(Progress::End),
            _ if *filled == out.len() => return Ok(Progress::More),
            _ if consumed == 0 && produced == 0 => {
                return if input.eof && input.buf.is_empty() {
                    Err(truncated())
                } else {
                    Ok(Progress::More)
                };
            }
            _ => {}
        }
    }
}

/// Takes a gzip header from `input` (after the bytes of it already `seen`): whether it is
/// complete.
fn header(seen: &mut Vec<u8>, input: &mut Input) -> io::Result<bool> {
    if seen.is_empty()
        && let Some(len) = header_len(&input.buf)?
    {
        input.consume(len);
        return Ok(true);
    }
    let before = seen.len();
    seen.extend_from_slice(&input.buf);
    let found = header_len(seen)?;
    input.consume(found.map_or(input.buf.len(), |len| len - before));
    match found {
        Some(_) => {
            *seen = Vec::new();
            Ok(true)
        }
        None if input.eof => Err(truncated()),
        None if seen.len() > MAX_GZIP_HEADER => Err(invalid("gzip header too long")),
        None => Ok(false),
    }
}

/// The length of the gzip header at the start of `b`, once `b` holds all of it.
fn header_len(b: &[u8]) -> io::Result<Option<usize>> {
    let bad = || invalid("invalid gzip header");
    for (at, magic) in [0x1f, 0x8b, 8].into_iter().enumerate() {
        match b.get(at) {
            None => return Ok(None),
            Some(&byte) if byte != magic => return Err(bad()),
            Some(_) => {}
        }
    }
    let Some(&flags) = b.get(3) else {
        return Ok(None);
    };
    let mut len = 10;
    if flags & 4 != 0 {
        // FEXTRA: a length, then that many bytes.
        let Some(&[x0, x1]) = b.get(len..len + 2) else {
            return Ok(None);
        };
        len += 2 + usize::from(u16::from_le_bytes([x0, x1]));
    }
    for field in [8, 16] {
        // FNAME, FCOMMENT: zero-terminated.
        if flags & field != 0 {
            let Some(end) = b.get(len..).and_then(|rest| memchr::memchr(0, rest)) else {
                return Ok(None);
            };
            len += end + 1;
        }
    }
    if flags & 2 != 0 {
        // FHCRC: the low 16 bits of the header's CRC-32.
        let Some(&[h0, h1]) = b.get(len..len + 2) else {
            return Ok(None);
        };
        let mut crc = Crc::new();
        crc.update(&b[..len]);
        if crc.sum() as u16 != u16::from_le_bytes([h0, h1]) {
            return Err(bad());
        }
        len += 2;
    }
    Ok((b.len() >= len).then_some(len))
}
