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
        Some(match self {
            Coding::Identity => return None,
            Coding::Gzip => Decoder::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            Coding::Deflate => Decoder::Deflate(flate2::write::ZlibDecoder::new(Vec::new())),
            Coding::Brotli => {
                Decoder::Brotli(Box::new(brotli::DecompressorWriter::new(Vec::new(), 8192)))
            }
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
            Coding::Deflate => Encoder::Deflate(flate2::write::ZlibEncoder::new(
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
pub enum Decoder {
    /// gzip (multi-member, as concatenated gzip is valid).
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    /// zlib.
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
    /// brotli.
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

impl Decoder {
    /// Decodes `input`; returns what is decoded so far.
    pub fn decode(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Decoder::Gzip(d) => {
                d.write_all(input)?;
                d.flush()?;
                Ok(std::mem::take(d.get_mut()))
            }
            Decoder::Deflate(d) => {
                d.write_all(input)?;
                d.flush()?;
                Ok(std::mem::take(d.get_mut()))
            }
            Decoder::Brotli(d) => {
                d.write_all(input)?;
                d.flush()?;
                Ok(std::mem::take(d.get_mut()))
            }
        }
    }

    /// Ends the stream: errors if it was truncated.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Decoder::Gzip(d) => d.finish(),
            Decoder::Deflate(d) => d.finish(),
            Decoder::Brotli(d) => d.into_inner().map_err(|_| {
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
    /// zlib.
    Deflate(flate2::write::ZlibEncoder<Vec<u8>>),
    /// brotli.
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    /// Encodes `input` and flushes; returns the bytes ready to send.
    pub fn encode(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => {
                e.write_all(input)?;
                e.flush()?;
                Ok(std::mem::take(e.get_mut()))
            }
            Encoder::Deflate(e) => {
                e.write_all(input)?;
                e.flush()?;
                Ok(std::mem::take(e.get_mut()))
            }
            Encoder::Brotli(e) => {
                e.write_all(input)?;
                e.flush()?;
                Ok(std::mem::take(e.get_mut()))
            }
        }
    }

    /// Ends the stream and returns its last bytes.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Deflate(e) => e.finish(),
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
