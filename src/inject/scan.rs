//! Recognising a page that already loads the Messenger, and where its `</head>` is, from
//! raw bytes: cheap scans that never change what they look at. A marker found here is only a
//! candidate: the rewriter counts it when the page's tokenizer state there puts it in a
//! `<script>` (its text, or its `src`), not in a title, an attribute or other text.

use std::sync::Arc;

use memchr::memmem;

/// The byte patterns that show a page already loads the Messenger, compiled once at start.
pub struct MessengerMarkers {
    finders: Vec<memmem::Finder<'static>>,
    longest: usize,
}

impl MessengerMarkers {
    /// `intercomSettings`, a boot call, Intercom's widget path, and the configured widget URL.
    pub fn new(widget_url: &str) -> Self {
        let finders: Vec<_> = [
            b"intercomSettings".as_slice(),
            b"Intercom('boot'",
            b"Intercom(\"boot\"",
            b"widget.intercom.io/widget/",
            widget_url.as_bytes(),
        ]
        .into_iter()
        .map(|marker| memmem::Finder::new(marker).into_owned())
        .collect();
        let longest = finders.iter().map(|f| f.needle().len()).max().unwrap_or(0);
        MessengerMarkers { finders, longest }
    }

    pub(super) fn first_in(&self, haystack: &[u8]) -> Option<usize> {
        self.finders.iter().filter_map(|f| f.find(haystack)).min()
    }

    /// Where the first marker that ends past `boundary` in `haystack` starts.
    fn first_ending_past(&self, haystack: &[u8], boundary: usize) -> Option<usize> {
        self.finders
            .iter()
            .filter_map(|f| {
                f.find_iter(haystack)
                    .find(|at| at + f.needle().len() > boundary)
            })
            .min()
    }
}

/// Recognises a page that already loads the Messenger, from the raw bytes before our
/// insertion point. A byte scan rather than a lol_html text handler: text handlers make
/// lol_html re-serialise script text (invalid UTF-8 would come out as U+FFFD), and a proxy
/// must not change bytes it does not mean to change.
pub(super) struct MessengerScan {
    markers: Arc<MessengerMarkers>,
    /// The end of the previous chunk, for markers split across chunks.
    carry: Vec<u8>,
}

impl MessengerScan {
    pub(super) fn new(markers: Arc<MessengerMarkers>) -> Self {
        MessengerScan {
            markers,
            carry: Vec::new(),
        }
    }

    /// Whether `chunk` holds a marker (the scan's own state is left alone).
    pub(super) fn has_marker(&self, chunk: &[u8]) -> bool {
        self.markers.first_in(chunk).is_some()
    }

    /// Where in `chunk` the first marker at or after `from` starts (markers across chunks
    /// are [`find_in`](Self::find_in)'s).
    pub(super) fn next_in(&self, chunk: &[u8], from: usize) -> Option<usize> {
        let rest = chunk.get(from..)?;
        self.markers.first_in(rest).map(|at| from + at)
    }

    /// Where in `chunk` the first marker starts (0 when it began in the previous chunk).
    pub(super) fn find_in(&mut self, chunk: &[u8]) -> Option<usize> {
        let longest = self.markers.longest;
        let carried = self.carry.len();
        self.carry
            .extend_from_slice(&chunk[..chunk.len().min(longest)]);
        // Only a marker that reaches into this chunk: one wholly in the previous chunk's tail
        // was found there (and where it stands, the tokenizer state was another).
        let across = self
            .markers
            .first_ending_past(&self.carry, carried)
            .map(|at| at.saturating_sub(carried));
        let within = self.markers.first_in(chunk);
        let keep = longest.saturating_sub(1);
        let source: &[u8] = if chunk.len() >= keep {
            chunk
        } else {
            &self.carry
        };
        self.carry = source[source.len().saturating_sub(keep)..].to_vec();
        match (across, within) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Where the first `</head>` end tag (any case) sits in `html`, if it ends within `limit`
/// bytes: `(start of "</head", just past its ">")`. Only a hint for where to pause the
/// parser: lol_html decides what really is a tag.
pub(super) fn head_end_hint(html: &[u8], limit: usize) -> Option<(usize, usize)> {
    let window = &html[..html.len().min(limit)];
    let start = memchr::memchr_iter(b'<', window).find(|&at| {
        window.get(at + 1) == Some(&b'/')
            && window
                .get(at + 2..at + 6)
                .is_some_and(|name| name.eq_ignore_ascii_case(b"head"))
    })?;
    let end = memchr::memchr(b'>', &window[start..])? + start + 1;
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_end_hint_is_the_first_head_end_tag_in_any_case() {
        assert_eq!(
            head_end_hint(b"<title>x</title></head><body>", 512),
            Some((16, 23))
        );
        assert_eq!(head_end_hint(b"</HeAd >", 512), Some((0, 8)));
        assert_eq!(
            head_end_hint(b"</header></head>", 512),
            Some((0, 9)),
            "only a hint"
        );
        assert_eq!(head_end_hint(b"<head><title>x", 512), None);
        assert_eq!(head_end_hint(b"</hea", 512), None);
        let far = [b"a".repeat(600), b"</head>".to_vec()].concat();
        assert_eq!(head_end_hint(&far, 512), None);
    }

    #[test]
    fn markers_are_found_within_and_across_chunks() {
        let markers = Arc::new(MessengerMarkers::new("https://cdn.example/w.js"));
        let mut scan = MessengerScan::new(markers.clone());
        assert_eq!(scan.find_in(b"<script>var x = 1;</script>"), None);
        assert_eq!(scan.find_in(b"<script>window.intercomSet"), None);
        assert_eq!(scan.find_in(b"tings = {}</script>"), Some(0));
        let mut scan = MessengerScan::new(markers.clone());
        assert_eq!(
            scan.find_in(b"<title>intercomSettings</title><script>"),
            Some(7)
        );
        assert_eq!(
            scan.find_in(b"var a = 1;</script>"),
            None,
            "a marker wholly in the previous chunk is not found again"
        );
        let mut scan = MessengerScan::new(markers);
        let tag = b"<script src=\"https://cdn.example/w.js\">";
        assert_eq!(scan.find_in(tag), Some(13));
        assert_eq!(scan.next_in(tag, 14), None);
        let twice = b"<title>intercomSettings</title><script>Intercom('boot',{})";
        assert_eq!(scan.next_in(twice, 8), Some(39));
        assert_eq!(scan.next_in(twice, 100), None);
    }
}
