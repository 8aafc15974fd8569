//! Bounded zlib inflation, for the signed session formats that compress (Django's and
//! itsdangerous' `.` prefix).

use flate2::{Decompress, FlushDecompress, Status};

/// Why a payload did not inflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InflateError {
    /// Not a complete zlib stream.
    Corrupt,
    /// It inflates past the bound.
    TooLarge,
}

/// `zlib.decompress`, bounded: at most `max` bytes come out. Decompress is driven directly,
/// not through a reader, because flate2's readers take a truncated stream for a finished
/// one and Python does not; bytes after the stream's end are ignored, as in Python.
pub(super) fn inflate(input: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    let mut zlib = Decompress::new(true);
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).clamp(1024, max + 1));
    loop {
        let before = (zlib.total_in(), zlib.total_out());
        let consumed = usize::try_from(zlib.total_in()).map_err(|_| InflateError::Corrupt)?;
        let rest = input.get(consumed..).ok_or(InflateError::Corrupt)?;
        let status = zlib
            .decompress_vec(rest, &mut out, FlushDecompress::None)
            .map_err(|_| InflateError::Corrupt)?;
        if out.len() > max {
            return Err(InflateError::TooLarge);
        }
        if status == Status::StreamEnd {
            return Ok(out);
        }
        if out.len() == out.capacity() {
            // One byte past the limit is enough to tell "too large".
            let grow = out.len().max(1024).min(max + 1 - out.len());
            out.reserve_exact(grow);
        } else if (zlib.total_in(), zlib.total_out()) == before {
            return Err(InflateError::Corrupt);
        }
    }
}
