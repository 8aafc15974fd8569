//! The tokenizer states inside text that only a particular sequence ends: comments, the text
//! of RAWTEXT/RCDATA elements, and script data with its escaped and double-escaped states
//! (HTML Living Standard §13.2.5.2-31, 43-52). Each step takes one byte and says whether it
//! was consumed (else it is read again in the new state).

use super::lexer::is_space;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Comment {
    Start,
    StartDash,
    Text,
    EndDash,
    End,
    EndBang,
}

/// The comment states; `None` is the data state after `>`. (The "comment less-than sign"
/// states only decide parse errors: each ends where these do.)
pub(super) fn comment(state: Comment, c: u8) -> (Option<Comment>, bool) {
    use Comment as C;
    match (state, c) {
        (C::Start | C::StartDash | C::End | C::EndBang, b'>') => (None, true),
        (C::Start, b'-') => (Some(C::StartDash), true),
        (C::StartDash | C::EndDash | C::End, b'-') => (Some(C::End), true),
        (C::Text | C::EndBang, b'-') => (Some(C::EndDash), true),
        (C::End, b'!') => (Some(C::EndBang), true),
        (C::Text, _) => (Some(C::Text), true),
        _ => (Some(C::Text), false),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Raw {
    Text,
    Lt,
    /// `</` and this many bytes of the element's name.
    EndName(u8),
}

/// RAWTEXT and RCDATA of the element `name`; `None`: its end tag's name is complete, and `c`
/// goes on with the tag.
pub(super) fn raw(state: Raw, name: &[u8], c: u8) -> (Option<Raw>, bool) {
    match state {
        Raw::Text => (Some(if c == b'<' { Raw::Lt } else { Raw::Text }), true),
        Raw::Lt if c == b'/' => (Some(Raw::EndName(0)), true),
        Raw::Lt => (Some(Raw::Text), false),
        Raw::EndName(n) => match end_name(name, n, c) {
            Name::More(n) => (Some(Raw::EndName(n)), true),
            Name::Ended(true) => (None, true),
            // Letters of another name are text, as they are in the text state.
            Name::Other => (Some(Raw::Text), true),
            Name::Ended(false) | Name::Outside => (Some(Raw::Text), false),
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Script {
    Data,
    Lt,
    EscapeStart,
    EscapeStartDash,
    Escaped,
    EscapedDash,
    EscapedDashDash,
    EscapedLt,
    /// `<` and this many letters of `script`, in escaped text.
    DoubleEscapeStart(u8),
    DoubleEscaped,
    DoubleEscapedDash,
    DoubleEscapedDashDash,
    DoubleEscapedLt,
    /// `</` and this many letters of `script`, in double-escaped text.
    DoubleEscapeEnd(u8),
    /// `</` and this many letters of `script` (from escaped text or not).
    EndName {
        escaped: bool,
        n: u8,
    },
}

/// Script data; `None`: `</script` is complete, and `c` goes on with the end tag.
pub(super) fn script(state: Script, c: u8) -> (Option<Script>, bool) {
    use Script as T;
    let (next, consumed) = match (state, c) {
        (T::Data, b'<') => (T::Lt, true),
        (T::Data, _) => (T::Data, true),
        (T::Lt, b'/') => (
            T::EndName {
                escaped: false,
                n: 0,
            },
            true,
        ),
        (T::Lt, b'!') => (T::EscapeStart, true),
        (T::Lt, _) => (T::Data, false),
        (T::EscapeStart, b'-') => (T::EscapeStartDash, true),
        (T::EscapeStartDash, b'-') => (T::EscapedDashDash, true),
        (T::EscapeStart | T::EscapeStartDash, _) => (T::Data, false),
        (T::Escaped | T::EscapedDash | T::EscapedDashDash, b'<') => (T::EscapedLt, true),
        (T::Escaped, b'-') => (T::EscapedDash, true),
        (T::EscapedDash | T::EscapedDashDash, b'-') => (T::EscapedDashDash, true),
        (T::EscapedDashDash, b'>') => (T::Data, true),
        (T::Escaped | T::EscapedDash | T::EscapedDashDash, _) => (T::Escaped, true),
        (T::EscapedLt, b'/') => (
            T::EndName {
                escaped: true,
                n: 0,
            },
            true,
        ),
        (T::EscapedLt, _) if c.is_ascii_alphabetic() => (T::DoubleEscapeStart(0), false),
        (T::EscapedLt, _) => (T::Escaped, false),
        (T::DoubleEscapeStart(n), _) => match end_name(b"script", n, c) {
            Name::More(n) => (T::DoubleEscapeStart(n), true),
            Name::Ended(true) => (T::DoubleEscaped, true),
            Name::Ended(false) | Name::Other => (T::Escaped, true),
            Name::Outside => (T::Escaped, false),
        },
        (T::DoubleEscaped | T::DoubleEscapedDash | T::DoubleEscapedDashDash, b'<') => {
            (T::DoubleEscapedLt, true)
        }
        (T::DoubleEscaped, b'-') => (T::DoubleEscapedDash, true),
        (T::DoubleEscapedDash | T::DoubleEscapedDashDash, b'-') => (T::DoubleEscapedDashDash, true),
        (T::DoubleEscapedDashDash, b'>') => (T::Data, true),
        (T::DoubleEscaped | T::DoubleEscapedDash | T::DoubleEscapedDashDash, _) => {
            (T::DoubleEscaped, true)
        }
        (T::DoubleEscapedLt, b'/') => (T::DoubleEscapeEnd(0), true),
        (T::DoubleEscapedLt, _) => (T::DoubleEscaped, false),
        (T::DoubleEscapeEnd(n), _) => match end_name(b"script", n, c) {
            Name::More(n) => (T::DoubleEscapeEnd(n), true),
            Name::Ended(true) => (T::Escaped, true),
            Name::Ended(false) | Name::Other => (T::DoubleEscaped, true),
            Name::Outside => (T::DoubleEscaped, false),
        },
        (T::EndName { escaped, n }, _) => {
            let back = if escaped { T::Escaped } else { T::Data };
            match end_name(b"script", n, c) {
                Name::More(n) => (T::EndName { escaped, n }, true),
                Name::Ended(true) => return (None, true),
                // Letters of another name are text, as they are in `back`.
                Name::Other => (back, true),
                Name::Ended(false) | Name::Outside => (back, false),
            }
        }
    };
    (Some(next), consumed)
}

/// Reading a tag name that should be `name`, after `n` of its bytes matched.
enum Name {
    /// One more letter of it.
    More(u8),
    /// The name ended (space, `/`, `>`): whether it was all of `name`.
    Ended(bool),
    /// A letter that makes it another name.
    Other,
    /// Not part of a tag name at all.
    Outside,
}

fn end_name(name: &[u8], n: u8, c: u8) -> Name {
    let matched = usize::from(n);
    if c.is_ascii_alphabetic() {
        match name.get(matched) {
            Some(&want) if c.to_ascii_lowercase() == want => Name::More(n + 1),
            _ => Name::Other,
        }
    } else if is_space(c) || c == b'/' || c == b'>' {
        Name::Ended(matched == name.len())
    } else {
        Name::Outside
    }
}
