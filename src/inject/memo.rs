//! Heads already parsed: the snippet goes in without building a parser.
//!
//! Most apps send the same bytes up to `</head>` on every page view. lol_html's output is a
//! function of its input, so once a head was parsed and the rewriter's output turned out to
//! be exactly "the head with the snippet spliced in before `</head>`" (no `<meta>` CSP to
//! rewrite, no Messenger already there, nothing else inserted), the next page with the very
//! same head bytes gets that same splice directly. Heads with a `<meta http-equiv>` (a CSP
//! rewrite depends on more than the bytes) are never remembered; markup lol_html reads
//! differently from the hint is parsed and never matches; a head with a per-request token
//! (a CSRF `<meta>`) is parsed every time and its entries age out of the bounded memo. A
//! head with a Messenger marker anywhere in its bytes is never spliced either, even when the
//! marker turns out to be a word in a title: whether it is a Messenger depends on where the
//! tokenizer stands there, which only the parsed path follows.

use moka::sync::Cache;

/// Distinct heads remembered; a head is at most a parser slice (~0.5 KiB), so this bounds
/// the memo near 1 MiB.
const MAX_HEADS: u64 = 2048;

/// Remembered heads (UTF-8 pages), by their exact bytes up to and including `</head>`.
pub struct HeadMemo {
    /// Head bytes → where the snippet goes (the start of `</head>`); `None`: remembers
    /// nothing.
    heads: Option<Cache<Box<[u8]>, usize>>,
}

impl Default for HeadMemo {
    fn default() -> Self {
        HeadMemo {
            heads: Some(Cache::builder().max_capacity(MAX_HEADS).build()),
        }
    }
}

impl HeadMemo {
    /// A memo that remembers nothing: every head is parsed.
    pub fn off() -> Self {
        HeadMemo { heads: None }
    }

    /// Where the snippet goes in `head`, if exactly these bytes were parsed before.
    pub(super) fn insertion_point(&self, head: &[u8]) -> Option<usize> {
        self.heads.as_ref()?.get(head)
    }

    /// Remembers `head` when the parser's `output` for it was the plain splice of `snippet`
    /// at `at`; anything else is not remembered.
    pub(super) fn remember_if_plain(&self, head: &[u8], at: usize, snippet: &[u8], output: &[u8]) {
        let plain = at <= head.len()
            && output.len() == head.len() + snippet.len()
            && output[..at] == head[..at]
            && output[at..at + snippet.len()] == *snippet
            && output[at + snippet.len()..] == head[at..];
        if let (true, Some(heads)) = (plain, &self.heads) {
            heads.insert(head.into(), at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_splice_is_remembered() {
        let memo = HeadMemo::default();
        let head = b"<head><title>t</title></head>";
        let at = 22;
        memo.remember_if_plain(head, at, b"<s>", b"<head><title>t</title><s></head>");
        assert_eq!(memo.insertion_point(head), Some(at));
        assert_eq!(memo.insertion_point(b"<head><title>u</title></head>"), None);

        let rewritten = b"<head><meta content=\"x\"></head>";
        memo.remember_if_plain(
            rewritten,
            24,
            b"<s>",
            b"<head><meta content=\"y\"><s></head>",
        );
        assert_eq!(
            memo.insertion_point(rewritten),
            None,
            "the parser changed the head"
        );
        let elsewhere = b"<head><x></head>";
        memo.remember_if_plain(elsewhere, 9, b"<s>", b"<head><s><x></head>");
        assert_eq!(memo.insertion_point(elsewhere), None, "inserted elsewhere");
    }
}
