//! Content codings the rewriter can see through: decode the app's bytes (in bounded
//! slices, see `decoder.rs`), re-encode ours, synchronously, inside the body's `poll_frame`.

use std::io::{self, Write};

use flate2::Compression;

pub use super::decoder::Decoder;

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
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some(Decoder::gzip()),
            Coding::Deflate => Some(Decoder::deflate()),
            Coding::Brotli => Some(Decoder::brotli()),
        }
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

/// Writes `input` to a write-side encoder and takes what it produced.
fn pump<W: Write>(
    w: &mut W,
    input: &[u8],
    inner: impl FnOnce(&mut W) -> &mut Vec<u8>,
) -> io::Result<Vec<u8>> {
    w.write_all(input)?;
    w.flush()?;
    Ok(std::mem::take(inner(w)))
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
    use bytes::Bytes;

    use super::super::decoder::{BOMB_RATIO, ExpansionLimit, SLICE};
    use super::*;

    /// Pushes `chunks` and drains the decoder after each, as the body does; checks that no
    /// slice is over [`SLICE`].
    fn decode<'a>(
        dec: &mut Decoder,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut drain = |dec: &mut Decoder| -> io::Result<()> {
            while let Some(slice) = dec.next_slice()? {
                assert!(!slice.is_empty() && slice.len() <= SLICE, "{}", slice.len());
                out.extend_from_slice(slice);
            }
            Ok(())
        };
        for chunk in chunks {
            dec.push(Bytes::copy_from_slice(chunk));
            drain(dec)?;
        }
        dec.end_input();
        drain(dec)?;
        Ok(out)
    }

    fn decode_all(coding: Coding, compressed: &[u8], piece: usize) -> io::Result<Vec<u8>> {
        let mut dec = coding.decoder().unwrap();
        let out = decode(&mut dec, compressed.chunks(piece))?;
        dec.finish()?;
        Ok(out)
    }

    fn encode_all(coding: Coding, page: &[u8]) -> Vec<u8> {
        let mut enc = coding.encoder().unwrap();
        let mut compressed = enc.encode(page).unwrap();
        compressed.extend(enc.finish().unwrap());
        compressed
    }

    /// `page` compressed as tightly as the coding allows (a bomb's maker would).
    fn squeeze(coding: Coding, page: &[u8]) -> Vec<u8> {
        let best = Compression::best();
        match coding {
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), best);
                e.write_all(page).unwrap();
                e.finish().unwrap()
            }
            Coding::Deflate => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), best);
                e.write_all(page).unwrap();
                e.finish().unwrap()
            }
            _ => encode_all(coding, page),
        }
    }

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
            for piece in [1_000, compressed.len()] {
                assert_eq!(
                    decode_all(coding, &compressed, piece).unwrap(),
                    page,
                    "{coding:?}"
                );
            }
        }
    }

    #[test]
    fn empty_bodies_and_raw_deflate_are_accepted() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let mut dec = coding.decoder().unwrap();
            assert!(decode(&mut dec, [&[][..]]).unwrap().is_empty());
            assert!(dec.finish().is_ok(), "{coding:?}: empty body");
        }
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(b"<p>old IIS</p>").unwrap();
        let raw = raw.finish().unwrap();
        let mut dec = Coding::Deflate.decoder().unwrap();
        let out = decode(&mut dec, raw.chunks(1)).unwrap();
        assert!(dec.is_raw_deflate());
        let mut enc = Coding::Deflate.encoder().unwrap();
        enc.follow(&dec);
        dec.finish().unwrap();
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
            let mut compressed = encode_all(coding, &[b'x'; 10_000]);
            compressed.truncate(compressed.len() / 2);
            assert!(decode_all(coding, &compressed, 100).is_err(), "{coding:?}");
            assert!(
                decode_all(coding, &compressed[..1], 100).is_err(),
                "{coding:?}"
            );
        }
    }

    #[test]
    fn gzip_members_follow_each_other_and_nothing_follows_the_end() {
        let mut two = encode_all(Coding::Gzip, b"<p>one</p>");
        two.extend(encode_all(Coding::Gzip, b"<p>two</p>"));
        assert_eq!(
            decode_all(Coding::Gzip, &two, 7).unwrap(),
            b"<p>one</p><p>two</p>"
        );
        let mut named = flate2::GzBuilder::new()
            .filename("page.html")
            .comment("made by hand")
            .extra(vec![7; 300])
            .write(Vec::new(), Compression::fast());
        named.write_all(b"<p>named</p>").unwrap();
        let mut named = named.finish().unwrap();
        assert_eq!(
            decode_all(Coding::Gzip, &named, 1).unwrap(),
            b"<p>named</p>"
        );
        // With a header CRC (FHCRC), after the comment: taken when it matches.
        let header = 10 + 2 + 300 + "page.html\0".len() + "made by hand\0".len();
        named[3] |= 2;
        let mut crc = flate2::Crc::new();
        crc.update(&named[..header]);
        let sum = (crc.sum() as u16).to_le_bytes();
        let mut checked = named.clone();
        checked.splice(header..header, sum);
        assert_eq!(
            decode_all(Coding::Gzip, &checked, 1).unwrap(),
            b"<p>named</p>"
        );
        checked[header] ^= 1;
        assert!(decode_all(Coding::Gzip, &checked, 1).is_err());
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let mut garbage = encode_all(coding, b"<p>page</p>");
            garbage.extend_from_slice(b"junk");
            assert!(decode_all(coding, &garbage, 5).is_err(), "{coding:?}");
        }
    }

    /// 8 MiB of zeros compress to a few KiB (brotli: a few bytes): every call still
    /// gives at most one slice, and the codec's input is taken as it is needed.
    #[test]
    fn output_per_call_is_bounded_whatever_the_ratio() {
        let zeros = vec![0u8; 8 << 20];
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let compressed = squeeze(coding, &zeros);
            assert!(compressed.len() * 500 < zeros.len(), "{coding:?}");
            let mut dec = coding.decoder().unwrap();
            dec.push(Bytes::from(compressed));
            dec.end_input();
            let mut total = 0;
            let mut calls = 0;
            while let Some(slice) = dec.next_slice().unwrap() {
                assert!(slice.len() <= SLICE, "{coding:?}: {}", slice.len());
                assert!(slice.iter().all(|&b| b == 0));
                total += slice.len();
                calls += 1;
            }
            dec.finish().unwrap();
            assert_eq!(total, zeros.len(), "{coding:?}");
            assert!(calls >= zeros.len() / SLICE, "{coding:?}: {calls} calls");
        }
    }

    /// All that a chunk of the app's body holds comes out before the next chunk is needed,
    /// even when it takes several slices.
    #[test]
    fn a_chunk_is_decoded_in_full_before_more_is_read() {
        let page: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let mut enc = coding.encoder().unwrap();
            let first = enc.encode(&page[..250_000]).unwrap();
            let mut dec = coding.decoder().unwrap();
            dec.push(Bytes::from(first));
            let mut out = Vec::new();
            while let Some(slice) = dec.next_slice().unwrap() {
                out.extend_from_slice(slice);
            }
            assert_eq!(out.len(), 250_000, "{coding:?}");
        }
    }

    /// Past the floor (1 MiB here, 16 MiB in the proxy) an absurd ratio stops the decoder
    /// within a slice; a page of ordinary ratio goes on past it.
    #[test]
    fn expansion_past_the_floor_is_refused_only_at_an_absurd_ratio() {
        const FLOOR: u64 = 1 << 20;
        let zeros = vec![0u8; 4 << 20];
        let table: Vec<u8> = (0..120_000u64)
            .flat_map(|i| {
                format!("<tr><td>{i}</td><td>{}</td></tr>\n", i * 7919 % 10007).into_bytes()
            })
            .collect();
        assert!(table.len() as u64 > 3 * FLOOR);
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let bomb = squeeze(coding, &zeros);
            let mut dec = coding.decoder().unwrap().with_floor(FLOOR);
            dec.push(Bytes::from(bomb));
            let mut decoded = 0u64;
            let err = loop {
                match dec.next_slice() {
                    Ok(Some(slice)) => decoded += slice.len() as u64,
                    Ok(None) => panic!("{coding:?}: the bomb was decoded"),
                    Err(e) => break e,
                }
            };
            assert!(ExpansionLimit::is(&err), "{coding:?}: {err}");
            assert!(
                decoded <= FLOOR && decoded + SLICE as u64 > FLOOR,
                "{decoded}"
            );

            let page = encode_all(coding, &table);
            assert!((page.len() as u64) * BOMB_RATIO > table.len() as u64);
            let mut dec = coding.decoder().unwrap().with_floor(FLOOR);
            let out = decode(&mut dec, page.chunks(16_384)).unwrap();
            dec.finish().unwrap();
            assert!(out == table, "{coding:?}");
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
