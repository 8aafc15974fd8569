//! Decoding the app's compressed page in bounded slices: compressed bytes are queued as they
//! arrive, and each call decodes at most [`SLICE`] bytes of them. Memory per page is the
//! codec's window and one slice, whatever the compression ratio, and a page that expands
//! absurdly (a decompression bomb) is refused once it is past [`BOMB_FLOOR`].

mod inflate;

use std::io;

use brotli::{BrotliDecompressStream, BrotliResult, BrotliState, HeapAlloc, HuffmanCode};
use bytes::{Buf, Bytes, BytesMut};

use inflate::Inflate;

/// The most decoded bytes one [`Decoder::next_slice`] returns: what the rewriter and the
/// encoder handle at a time, and the only buffer of decoded bytes a page holds. 64 KiB is
/// about as much as the app sends per read of a compressed page today (16 KiB at 4x), so a
/// real page gets no more slices than it gets frames, and one slice is well under a
/// millisecond of work for the whole decode → rewrite → encode path.
pub(super) const SLICE: usize = 64 * 1024;

/// Below this many decoded bytes a page is never refused, whatever its ratio. A page of
/// whitespace or of one repeated row can legitimately compress hundreds of times, but such
/// pages are small; 16 MiB is far past any real page of that kind (and more than nine times
/// the benchmark's 1.7 MB page), while a bomb reaches it after about 0.1 s of work
/// (decoding, parsing and re-encoding 16 MiB of zeros, release build), with no more memory
/// than any other page.
pub(super) const BOMB_FLOOR: u64 = 16 << 20;

/// Past [`BOMB_FLOOR`], a page whose decoded size is more than this many times the
/// compressed bytes read so far is a bomb. Real HTML compresses 5-20x, and machine-made pages
/// of long repeated runs rarely pass 50x; zeros compress 1,000x with gzip (218x at flate2's
/// fastest level) and up to 1,000,000x with brotli. A page under this ratio costs no more
/// to pass on than an uncompressed page 128 times its size on the wire.
pub(super) const BOMB_RATIO: u64 = 128;

/// The app's page expanded past [`BOMB_FLOOR`] at more than [`BOMB_RATIO`] times its
/// compressed size: decoding stops there.
#[derive(Debug)]
pub(super) struct ExpansionLimit {
    decoded: u64,
    compressed: u64,
}

impl std::fmt::Display for ExpansionLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes decoded from {} compressed bytes: more than {BOMB_RATIO}x past {} MiB, \
             a decompression bomb",
            self.decoded,
            self.compressed,
            BOMB_FLOOR >> 20
        )
    }
}

impl std::error::Error for ExpansionLimit {}

impl ExpansionLimit {
    /// Whether `err` is this limit being hit.
    pub(super) fn is(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|e| e.is::<ExpansionLimit>())
    }
}

/// Compressed bytes received and not decoded yet, and whether the body ended.
#[derive(Default)]
struct Input {
    buf: Bytes,
    eof: bool,
    /// Compressed bytes the codec consumed.
    consumed: u64,
}

impl Input {
    fn push(&mut self, data: Bytes) {
        if self.buf.is_empty() {
            self.buf = data;
        } else {
            // The codec left bytes it could not use alone (the first byte of a deflate
            // body, say): rare, and small.
            let mut joined = BytesMut::with_capacity(self.buf.len() + data.len());
            joined.extend_from_slice(&self.buf);
            joined.extend_from_slice(&data);
            self.buf = joined.freeze();
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.consumed += n as u64;
    }
}

type Brotli = BrotliState<HeapAlloc<u8>, HeapAlloc<u32>, HeapAlloc<HuffmanCode>>;

enum Codec {
    /// `deflate` is zlib per RFC 9110, but old servers send raw deflate and browsers take
    /// both: the first two bytes tell.
    SniffDeflate,
    Inflate(Inflate),
    Brotli(Box<Brotli>),
}

/// What the codec did with the input it had.
enum Progress {
    /// It needs more input, or filled the slice.
    More,
    /// The compressed stream ended.
    End,
}

/// Streaming decoder: queue compressed bytes with [`push`](Decoder::push), take decoded
/// bytes a slice at a time with [`next_slice`](Decoder::next_slice).
pub struct Decoder {
    codec: Codec,
    input: Input,
    /// The current slice, allocated on first use.
    out: Vec<u8>,
    /// Whether any byte arrived: an empty body is a valid (empty) page in any coding.
    received: bool,
    /// The body is raw deflate rather than zlib.
    raw_deflate: bool,
    /// The compressed stream ended: anything after it is an error.
    ended: bool,
    /// The last slice was cut short by its size: the codec may hold more output.
    full: bool,
    /// A fault met after decoding some bytes, reported once those are out.
    error: Option<io::Error>,
    /// Decoded bytes so far.
    decoded: u64,
    /// [`BOMB_FLOOR`], lower in tests.
    floor: u64,
}

fn is_zlib_header(b0: u8, b1: u8) -> bool {
    b0 & 0x0f == 8 && (u16::from(b0) << 8 | u16::from(b1)) % 31 == 0
}

fn trailing() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "bytes after the end of the compressed stream",
    )
}

impl Decoder {
    pub(super) fn gzip() -> Self {
        Self::new(Codec::Inflate(Inflate::gzip()))
    }

    pub(super) fn deflate() -> Self {
        Self::new(Codec::SniffDeflate)
    }

    pub(super) fn brotli() -> Self {
        // Strict: no large-window brotli (RFC 7932's windows only, up to 16 MiB), which no
        // browser accepts either and whose window could be 1 GiB.
        let state = Brotli::new_strict(
            HeapAlloc::new(0),
            HeapAlloc::new(0),
            HeapAlloc::new(HuffmanCode::default()),
        );
        Self::new(Codec::Brotli(Box::new(state)))
    }

    fn new(codec: Codec) -> Self {
        Decoder {
            codec,
            input: Input::default(),
            out: Vec::new(),
            received: false,
            raw_deflate: false,
            ended: false,
            full: false,
            error: None,
            decoded: 0,
            floor: BOMB_FLOOR,
        }
    }

    /// Queues compressed bytes; decode them with [`next_slice`](Decoder::next_slice) before
    /// pushing more.
    pub fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.received = true;
        self.input.push(data);
        // The deflate flavour is known from the first two bytes, before any output (so that
        // the encoder can follow it).
        if let (Codec::SniffDeflate, [b0, b1, ..]) = (&self.codec, &self.input.buf[..]) {
            self.raw_deflate = !is_zlib_header(*b0, *b1);
            self.codec = Codec::Inflate(if self.raw_deflate {
                Inflate::raw()
            } else {
                Inflate::zlib()
            });
        }
    }

    /// Marks the end of the compressed body.
    pub fn end_input(&mut self) {
        self.input.eof = true;
    }

    /// Decodes up to [`SLICE`] bytes of what was pushed. `None` when the decoder needs more
    /// input, or, after [`end_input`](Decoder::end_input), when the page is complete.
    /// Errors for a corrupt or truncated stream, bytes after its end, and a bomb; what could
    /// be decoded before the fault comes first.
    pub fn next_slice(&mut self) -> io::Result<Option<&[u8]>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let (empty, eof) = (self.input.buf.is_empty(), self.input.eof);
        if self.ended {
            return if empty { Ok(None) } else { Err(trailing()) };
        }
        // Nothing new to decode, and the codec holds nothing back (the last slice was not
        // cut short by its size); or an empty body, which is complete.
        if empty && (!self.received || (!eof && !self.full)) {
            return Ok(None);
        }
        if self.out.is_empty() {
            self.out = vec![0; SLICE];
        }
        let mut filled = 0;
        let result = match &mut self.codec {
            Codec::SniffDeflate if eof => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated deflate stream",
            )),
            Codec::SniffDeflate => Ok(Progress::More),
            Codec::Inflate(inflate) => inflate.fill(&mut self.input, &mut self.out, &mut filled),
            Codec::Brotli(state) => brotli(state, &mut self.input, &mut self.out, &mut filled),
        };
        self.full = filled == SLICE;
        match result {
            Ok(Progress::More) => {}
            Ok(Progress::End) => {
                self.ended = true;
                if !self.input.buf.is_empty() {
                    self.error = Some(trailing());
                }
            }
            Err(e) => self.error = Some(e),
        }
        if filled == 0 {
            return self.error.take().map_or(Ok(None), Err);
        }
        self.decoded += filled as u64;
        let compressed = self.input.consumed;
        if self.decoded > self.floor && self.decoded > compressed.saturating_mul(BOMB_RATIO) {
            return Err(io::Error::other(ExpansionLimit {
                decoded: self.decoded,
                compressed,
            }));
        }
        Ok(Some(&self.out[..filled]))
    }

    /// True once the body turned out to be raw deflate rather than zlib (known before the
    /// first slice).
    pub fn is_raw_deflate(&self) -> bool {
        self.raw_deflate
    }

    /// Ends the stream: errors if it was truncated. Call once
    /// [`next_slice`](Decoder::next_slice) returned `None` after
    /// [`end_input`](Decoder::end_input).
    pub fn finish(self) -> io::Result<()> {
        if !self.received || self.ended {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated compressed stream",
        ))
    }

    #[cfg(test)]
    pub(super) fn with_floor(mut self, floor: u64) -> Self {
        self.floor = floor;
        self
    }
}

/// Decodes with brotli's streaming API into `out[*filled..]`.
fn brotli(
    state: &mut Brotli,
    input: &mut Input,
    out: &mut [u8],
    filled: &mut usize,
) -> io::Result<Progress> {
    let mut available_in = input.buf.len();
    let mut in_offset = 0;
    let mut available_out = out.len() - *filled;
    let mut total_out = 0;
    let result = BrotliDecompressStream(
        &mut available_in,
        &mut in_offset,
        &input.buf,
        &mut available_out,
        filled,
        out,
        &mut total_out,
        state,
    );
    input.consume(in_offset);
    match result {
        BrotliResult::ResultSuccess => Ok(Progress::End),
        BrotliResult::NeedsMoreOutput => Ok(Progress::More),
        BrotliResult::NeedsMoreInput if input.eof => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated brotli stream",
        )),
        BrotliResult::NeedsMoreInput => Ok(Progress::More),
        BrotliResult::ResultFailure => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "corrupt brotli stream",
        )),
    }
}
