//! Header helpers shared by the proxy and the injection layer.

use http::{HeaderMap, HeaderName};

/// The comma-separated tokens of every `name` line, trimmed and non-empty (lines that are
/// not text are skipped).
pub(crate) fn header_tokens<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
