//! Content codings the rewriter can see through: decode the app's bytes, re-encode ours,
//! chunk by chunk, synchronously, inside the body's `poll_frame`.

use std::io::{self, Write};

use flate2::Compression;

/// A content coding of the app's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// No `Content-Encoding`.
    Identity,
    /// `gzip` / `x-gzip`.
    Gzip,
    /// `deflate` (zlib-wrapped, RFC 9110).
    Deflate,
    /// `br`.
    Brotli,
}

impl Coding {
    /// The coding named by a `Content-Encoding` value; `None` for codings we cannot decode
    /// (including stacked codings), which are passed through untouched.
    pub fn from_header(value: Option<&str>) -> Option<Coding> {
        let Some(value) = value else {
            return Some(Coding::Identity);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Coding::Identity),
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Brotli),
            _ => None,
        }
    }

    /// A decoder for this coding (`None` for identity).
    pub fn decoder(self) -> Option<Decoder> {
        let kind = match self {
            Coding::Identity => return None,
            Coding::Gzip => DecoderKind::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            Coding::Deflate => DecoderKind::SniffDeflate(Vec::new()),
            Coding::Brotli => {
                DecoderKind::Brotli(Box::new(brotli::DecompressorWriter::new(Vec::new(), 8192)))
            }
        };
        Some(Decoder {
            kind,
            received: false,
        })
    }

    /// An encoder for this coding (`None` for identity).
    ///
    /// gzip/deflate at level 1, nginx's default `gzip_comp_level`: the whole page is
    /// re-encoded on the response path, and level 5 costs 2.5-3x the CPU
    /// (`cargo bench --bench rewrite`: 34 KB page 288 µs → 120 µs, 1.7 MB 15.5 ms → 5.4 ms).
    pub fn encoder(self) -> Option<Encoder> {
        Some(match self {
            Coding::Identity => return None,
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                Compression::fast(),
            )),
            Coding::Deflate => Encoder::Zlib(flate2::write::ZlibEncoder::new(
                Vec::new(),
                Compression::fast(),
            )),
            // Quality 5, window 22: close to what web servers use for dynamic pages.
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                8192,
                5,
                22,
            ))),
        })
    }
}

/// Streaming decoder: feed compressed bytes, take decoded bytes.
pub struct Decoder {
    kind: DecoderKind,
    /// Whether any byte arrived: an empty body is a valid (empty) page in any coding.
    received: bool,
}

enum DecoderKind {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    /// `deflate` is zlib per RFC 9110, but old servers send raw deflate and browsers take
    /// both: the first two bytes tell.
    SniffDeflate(Vec<u8>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    RawDeflate(flate2::write::DeflateDecoder<Vec<u8>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

/// Writes `input` to a write-side decoder or encoder and takes what it produced.
fn pump<W: Write>(
    w: &mut W,
    input: &[u8],
    inner: impl FnOnce(&mut W) -> &mut Vec<u8>,
) -> io::Result<Vec<u8>> {
    w.write_all(input)?;
    w.flush()?;
    Ok(std::mem::take(inner(w)))
}

fn is_zlib_header(b0: u8, b1: u8) -> bool {
    b0 & 0x0f == 8 && (u16::from(b0) << 8 | u16::from(b1)) % 31 == 0
}

impl Decoder {
    /// Decodes `input`; returns what is decoded so far.
    pub fn decode(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        self.received |= !input.is_empty();
        match &mut self.kind {
            DecoderKind::Gzip(d) => pump(d, input, |d| d.get_mut()),
            DecoderKind::Zlib(d) => pump(d, input, |d| d.get_mut()),
            DecoderKind::RawDeflate(d) => pump(d, input, |d| d.get_mut()),
            DecoderKind::Brotli(d) => pump(d.as_mut(), input, |d| d.get_mut()),
            DecoderKind::SniffDeflate(head) => {
                head.extend_from_slice(input);
                if head.len() < 2 {
                    return Ok(Vec::new());
                }
                let head = std::mem::take(head);
                self.kind = if is_zlib_header(head[0], head[1]) {
                    DecoderKind::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
                } else {
                    DecoderKind::RawDeflate(flate2::write::DeflateDecoder::new(Vec::new()))
                };
                self.decode(&head)
            }
        }
    }

    /// True once the body turned out to be raw deflate rather than zlib.
    pub fn is_raw_deflate(&self) -> bool {
        matches!(self.kind, DecoderKind::RawDeflate(_))
    }

    /// Ends the stream: errors if it was truncated.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        if !self.received {
            return Ok(Vec::new());
        }
        match self.kind {
            DecoderKind::Gzip(d) => d.finish(),
            DecoderKind::Zlib(d) => d.finish(),
            DecoderKind::RawDeflate(d) => d.finish(),
            DecoderKind::SniffDeflate(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated deflate stream",
            )),
            DecoderKind::Brotli(d) => d.into_inner().map_err(|_| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "truncated brotli stream")
            }),
        }
    }
}

/// Streaming encoder: feed bytes, take compressed bytes flushed so that the browser can
/// render what it has (a sync flush per chunk keeps time-to-first-byte low).
pub enum Encoder {
    /// gzip.
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    /// `deflate` as zlib.
    Zlib(flate2::write::ZlibEncoder<Vec<u8>>),
    /// `deflate` as raw deflate, when the app sent that.
    RawDeflate(flate2::write::DeflateEncoder<Vec<u8>>),
    /// brotli.
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    /// Answers in the same deflate flavour as the app; call before the first `encode`.
    pub fn follow(&mut self, decoder: &Decoder) {
        if decoder.is_raw_deflate() && matches!(self, Encoder::Zlib(_)) {
            *self = Encoder::RawDeflate(flate2::write::DeflateEncoder::new(
                Vec::new(),
                Compression::fast(),
            ));
        }
    }

    /// Encodes `input` and flushes; returns the bytes ready to send.
    pub fn encode(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => pump(e, input, |e| e.get_mut()),
            Encoder::Zlib(e) => pump(e, input, |e| e.get_mut()),
            Encoder::RawDeflate(e) => pump(e, input, |e| e.get_mut()),
            Encoder::Brotli(e) => pump(e.as_mut(), input, |e| e.get_mut()),
        }
    }

    /// Ends the stream and returns its last bytes.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zlib(e) => e.finish(),
            Encoder::RawDeflate(e) => e.finish(),
            Encoder::Brotli(e) => Ok(e.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_coding_round_trips_in_pieces() {
        let page: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let mut enc = coding.encoder().unwrap();
            let mut compressed = Vec::new();
            for chunk in page.chunks(7_777) {
                compressed.extend(enc.encode(chunk).unwrap());
            }
            compressed.extend(enc.finish().unwrap());
            let mut dec = coding.decoder().unwrap();
            let mut out = Vec::new();
            for chunk in compressed.chunks(1_000) {
                out.extend(dec.decode(chunk).unwrap());
            }
            out.extend(dec.finish().unwrap());
            assert_eq!(out, page, "{coding:?}");
        }
    }

    #[test]
    fn empty_bodies_and_raw_deflate_are_accepted() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let mut dec = coding.decoder().unwrap();
            assert!(dec.decode(&[]).unwrap().is_empty());
            assert!(dec.finish().unwrap().is_empty(), "{coding:?}: empty body");
        }
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(b"<p>old IIS</p>").unwrap();
        let raw = raw.finish().unwrap();
        let mut dec = Coding::Deflate.decoder().unwrap();
        let mut out = Vec::new();
        for byte in &raw {
            out.extend(dec.decode(&[*byte]).unwrap());
        }
        out.extend_from_slice(&[]);
        assert!(dec.is_raw_deflate());
        let mut enc = Coding::Deflate.encoder().unwrap();
        enc.follow(&dec);
        out.extend(dec.finish().unwrap());
        assert_eq!(out, b"<p>old IIS</p>");
        let mut encoded = enc.encode(&out).unwrap();
        encoded.extend(enc.finish().unwrap());
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::DeflateDecoder::new(&encoded[..]),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, b"<p>old IIS</p>", "answered as raw deflate too");
    }

    #[test]
    fn truncated_streams_are_reported() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let mut enc = coding.encoder().unwrap();
            let mut compressed = enc.encode(&[b'x'; 10_000]).unwrap();
            compressed.extend(enc.finish().unwrap());
            compressed.truncate(compressed.len() / 2);
            let mut dec = coding.decoder().unwrap();
            let partial = dec.decode(&compressed);
            assert!(partial.is_err() || dec.finish().is_err(), "{coding:?}");
        }
    }

    #[test]
    fn header_values() {
        assert_eq!(Coding::from_header(None), Some(Coding::Identity));
        assert_eq!(Coding::from_header(Some("GZIP")), Some(Coding::Gzip));
        assert_eq!(Coding::from_header(Some("x-gzip")), Some(Coding::Gzip));
        assert_eq!(Coding::from_header(Some("br")), Some(Coding::Brotli));
        assert_eq!(Coding::from_header(Some("gzip, br")), None);
        assert_eq!(Coding::from_header(Some("zstd")), None);
    }
}
