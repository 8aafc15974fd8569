//! Where a browser's HTML tokenizer stands after the bytes seen so far: a small model of the
//! tokenizer's states (HTML Living Standard §13.2.5), fed the same bytes as lol_html, which
//! does not expose its own.
//!
//! It answers three questions: may text be appended here (the document end is in the data
//! state, outside any raw-text element, template or foreign content), is a byte the text
//! of a `<script>` or a `<script>`'s `src`, and where lol_html's tokenizer parts from a
//! browser's (see [`Lexer::feed`]). Tag names, attribute names, quotes, comments,
//! doctypes, bogus comments, RAWTEXT/RCDATA elements (`style`, `xmp`, `iframe`, `noembed`,
//! `noframes`, `noscript`, `title`, `textarea`), script data with its escaped and
//! double-escaped states, and `plaintext` are followed as the standard says. What needs the
//! tree builder is not: once `<svg>` or `<math>` opened (where `<![CDATA[` and raw-text
//! elements mean other things), text is never appended again. Character references change no
//! state here; bytes only matter where they are ASCII, so every ASCII-compatible encoding
//! reads the same.

use memchr::{memchr, memchr2};

use super::text::{self, Comment, Raw, Script};

/// Elements whose text is RAWTEXT or RCDATA: it ends only at the element's own end tag.
const RAW_TEXT: [&[u8]; 8] = [
    b"style",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
    b"noscript",
    b"title",
    b"textarea",
];

/// Room for the longest tag name that means anything here (`plaintext`).
const NAME: usize = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Data,
    TagOpen,
    EndTagOpen,
    TagName,
    BeforeAttrName,
    AttrName,
    AfterAttrName,
    BeforeAttrValue,
    /// In a value quoted with this byte, or unquoted (0).
    AttrValue(u8),
    AfterAttrValueQuoted,
    SelfClosing,
    /// After `<!`, `<!-`, or `<!` and this many letters of `doctype`.
    MarkupDecl,
    DeclDash,
    DeclDoctype(u8),
    Comment(Comment),
    /// A doctype or a bogus comment: both end at the first `>`.
    UntilGt,
    /// The text of the RAWTEXT/RCDATA element `Lexer::raw`.
    Raw(Raw),
    Script(Script),
    PlainText,
}

/// The tokenizer's state after the bytes fed so far.
pub(in crate::inject) struct Lexer {
    state: State,
    /// The current tag: end tag or start tag, its lower-cased name (the first `NAME` bytes)
    /// and full length.
    end_tag: bool,
    name: [u8; NAME],
    name_len: usize,
    /// Whether the current attribute's name so far begins `src`, and its length.
    attr_src: bool,
    attr_len: usize,
    /// The RAWTEXT/RCDATA element whose text `State::Raw` is in.
    raw: &'static [u8],
    /// `<svg>` or `<math>` was opened: the tree builder decides too much from here on.
    foreign: bool,
    /// `<template>`s open.
    templates: usize,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            state: State::Data,
            end_tag: false,
            name: [0; NAME],
            name_len: 0,
            attr_src: false,
            attr_len: 0,
            raw: b"",
            foreign: false,
            templates: 0,
        }
    }
}

pub(super) fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

impl Lexer {
    /// Whether text (a `<script>` element) appended here would be read as markup in the
    /// data state, as it is at the start of a document.
    pub(in crate::inject) fn at_text(&self) -> bool {
        self.state == State::Data && !self.foreign && self.templates == 0
    }

    /// Whether the next byte is text of a `<script>` element.
    pub(in crate::inject) fn in_script(&self) -> bool {
        matches!(self.state, State::Script(_))
    }

    /// Whether the next byte is in the value of a `<script>` start tag's `src`.
    pub(in crate::inject) fn in_script_src(&self) -> bool {
        matches!(self.state, State::AttrValue(_) | State::BeforeAttrValue)
            && !self.end_tag
            && self.attr_src
            && self.attr_len == 3
            && self.tag_name() == Some(b"script")
    }

    /// Advances over `bytes`; stops early, returning how far it read, just past a tag after
    /// which lol_html's tokenizer no longer reads the bytes as a browser does. lol_html
    /// (3.0) ends a start tag whose last attribute is missing its value (`<script async=>`,
    /// `<title x= >`) in the data state, even for an element whose text is script data,
    /// RAWTEXT, RCDATA or plaintext: from there on it would see tags (a `<head>`, a
    /// `<body>`) in what a browser reads as the element's text.
    pub(in crate::inject) fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut at = 0;
        while at < bytes.len() {
            // Skip runs of bytes that leave the state as it is.
            let rest = &bytes[at..];
            let skip = match self.state {
                State::Data | State::Raw(Raw::Text) | State::Script(Script::Data) => {
                    memchr(b'<', rest)
                }
                State::Script(Script::Escaped | Script::DoubleEscaped) => memchr2(b'-', b'<', rest),
                State::AttrValue(quote) if quote != 0 => memchr(quote, rest),
                State::Comment(Comment::Text) => memchr(b'-', rest),
                State::UntilGt => memchr(b'>', rest),
                State::PlainText => None,
                _ => Some(0),
            };
            let skip = skip?;
            at += skip;
            // lol_html goes to the data state after `=>` whatever the element: where a
            // browser goes elsewhere (a raw-text start tag), the two part.
            let missing_value = self.state == State::BeforeAttrValue && bytes[at] == b'>';
            if self.step(bytes[at]) {
                at += 1;
            }
            if missing_value && self.state != State::Data {
                return Some(at);
            }
        }
        None
    }

    fn tag_name(&self) -> Option<&[u8]> {
        (self.name_len <= NAME).then(|| &self.name[..self.name_len])
    }

    fn new_tag(&mut self, end_tag: bool) {
        self.end_tag = end_tag;
        self.name_len = 0;
        self.attr_src = false;
    }

    fn new_attr(&mut self) {
        self.attr_len = 0;
        self.attr_src = false;
    }

    fn push_attr(&mut self, c: u8) {
        self.attr_len += 1;
        let next = b"src".get(self.attr_len - 1) == Some(&c.to_ascii_lowercase());
        self.attr_src = next && (self.attr_len == 1 || self.attr_src);
    }

    /// The state after a tag ends with `>`.
    fn emit_tag(&mut self) -> State {
        let name = self.tag_name();
        if self.end_tag {
            if name == Some(b"template") {
                self.templates = self.templates.saturating_sub(1);
            }
            return State::Data;
        }
        match name {
            Some(b"script") => State::Script(Script::Data),
            Some(b"plaintext") => State::PlainText,
            Some(b"svg" | b"math") => {
                self.foreign = true;
                State::Data
            }
            Some(b"template") => {
                self.templates += 1;
                State::Data
            }
            Some(name) => match RAW_TEXT.iter().find(|raw| **raw == name) {
                Some(raw) => {
                    self.raw = raw;
                    State::Raw(Raw::Text)
                }
                None => State::Data,
            },
            None => State::Data,
        }
    }

    /// After an element's own end tag name in its text: the tag goes on as an end tag.
    fn end_tag_after_text(&mut self, c: u8) -> State {
        self.new_tag(true);
        match c {
            b'/' => State::SelfClosing,
            b'>' => State::Data,
            _ => State::BeforeAttrName,
        }
    }

    /// One byte; false when it must be read again in the new state.
    fn step(&mut self, c: u8) -> bool {
        use State as S;
        let (next, consumed) = match self.state {
            S::Data => (if c == b'<' { S::TagOpen } else { S::Data }, true),
            S::TagOpen => match c {
                b'!' => (S::MarkupDecl, true),
                b'/' => (S::EndTagOpen, true),
                b'?' => (S::UntilGt, false),
                _ if c.is_ascii_alphabetic() => {
                    self.new_tag(false);
                    (S::TagName, false)
                }
                _ => (S::Data, false),
            },
            S::EndTagOpen => match c {
                _ if c.is_ascii_alphabetic() => {
                    self.new_tag(true);
                    (S::TagName, false)
                }
                b'>' => (S::Data, true),
                _ => (S::UntilGt, false),
            },
            S::TagName => match c {
                _ if is_space(c) => (S::BeforeAttrName, true),
                b'/' => (S::SelfClosing, true),
                b'>' => (self.emit_tag(), true),
                _ => {
                    if let Some(slot) = self.name.get_mut(self.name_len) {
                        *slot = c.to_ascii_lowercase();
                    }
                    self.name_len += 1;
                    (S::TagName, true)
                }
            },
            S::BeforeAttrName => match c {
                _ if is_space(c) => (S::BeforeAttrName, true),
                b'/' | b'>' => (S::AfterAttrName, false),
                _ => {
                    self.new_attr();
                    // A leading `=` is part of the name.
                    if c == b'=' {
                        self.push_attr(c);
                    }
                    (S::AttrName, c == b'=')
                }
            },
            S::AttrName => match c {
                _ if is_space(c) || c == b'/' || c == b'>' => (S::AfterAttrName, false),
                b'=' => (S::BeforeAttrValue, true),
                _ => {
                    self.push_attr(c);
                    (S::AttrName, true)
                }
            },
            S::AfterAttrName => match c {
                _ if is_space(c) => (S::AfterAttrName, true),
                b'/' => (S::SelfClosing, true),
                b'=' => (S::BeforeAttrValue, true),
                b'>' => (self.emit_tag(), true),
                _ => {
                    self.new_attr();
                    (S::AttrName, false)
                }
            },
            S::BeforeAttrValue => match c {
                _ if is_space(c) => (S::BeforeAttrValue, true),
                b'"' | b'\'' => (S::AttrValue(c), true),
                b'>' => (self.emit_tag(), true),
                _ => (S::AttrValue(0), false),
            },
            S::AttrValue(0) => match c {
                _ if is_space(c) => (S::BeforeAttrName, true),
                b'>' => (self.emit_tag(), true),
                _ => (S::AttrValue(0), true),
            },
            S::AttrValue(quote) => match c == quote {
                true => (S::AfterAttrValueQuoted, true),
                false => (S::AttrValue(quote), true),
            },
            S::AfterAttrValueQuoted => match c {
                _ if is_space(c) => (S::BeforeAttrName, true),
                b'/' => (S::SelfClosing, true),
                b'>' => (self.emit_tag(), true),
                _ => (S::BeforeAttrName, false),
            },
            S::SelfClosing => match c {
                b'>' => (self.emit_tag(), true),
                _ => (S::BeforeAttrName, false),
            },
            S::MarkupDecl => match c {
                b'-' => (S::DeclDash, true),
                b'd' | b'D' => (S::DeclDoctype(1), true),
                // `<![CDATA[` outside foreign content is a bogus comment too.
                _ => (S::UntilGt, false),
            },
            S::DeclDash => match c {
                b'-' => (S::Comment(Comment::Start), true),
                _ => (S::UntilGt, false),
            },
            S::DeclDoctype(n) => match b"doctype".get(usize::from(n)) {
                Some(&want) if c.to_ascii_lowercase() == want => match n + 1 {
                    7 => (S::UntilGt, true),
                    n => (S::DeclDoctype(n), true),
                },
                _ => (S::UntilGt, false),
            },
            S::Comment(state) => match text::comment(state, c) {
                (Some(next), consumed) => (S::Comment(next), consumed),
                (None, consumed) => (S::Data, consumed),
            },
            S::UntilGt => (if c == b'>' { S::Data } else { S::UntilGt }, true),
            S::Raw(state) => match text::raw(state, self.raw, c) {
                (Some(next), consumed) => (S::Raw(next), consumed),
                (None, consumed) => (self.end_tag_after_text(c), consumed),
            },
            S::Script(state) => match text::script(state, c) {
                (Some(next), consumed) => (S::Script(next), consumed),
                (None, consumed) => (self.end_tag_after_text(c), consumed),
            },
            S::PlainText => (S::PlainText, true),
        };
        self.state = next;
        consumed
    }
}

#[cfg(test)]
mod tests;
