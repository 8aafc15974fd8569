//! Character references in attribute values, read as a browser's tokenizer reads them (HTML
//! Living Standard, "character reference state" and the states after it), and text written
//! back so that a browser reads exactly it.
//!
//! lol_html hands over an attribute's raw value, with `&#39;` still six characters long; a
//! `<meta>` CSP must be read with its references decoded, or the `;` of `&#39;` splits a
//! directive. Decoded with certainty: numeric references (with or without `;`, out-of-range
//! and C1 values mapped as the standard maps them), every legacy name a browser also decodes
//! without `;` (the attribute rule included: not before `=` or an alphanumeric), and the
//! ASCII punctuation names. Any other name followed by `;` may be one of the ~2,200 names the
//! standard lists, so such a value is not read at all (`None`): the caller leaves it alone.

use std::borrow::Cow;

/// U+00A0..=U+00FF by their entity names, in code point order. With `COPY`, `REG`, and
/// `amp`, `lt`, `gt`, `quot` in both cases, these are all the names decoded without `;`.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// Names known only with `;`: the ASCII punctuation a policy could be written with.
const PUNCTUATION: [(&str, char); 27] = [
    ("apos", '\''),
    ("semi", ';'),
    ("comma", ','),
    ("colon", ':'),
    ("Tab", '\t'),
    ("NewLine", '\n'),
    ("sol", '/'),
    ("bsol", '\\'),
    ("num", '#'),
    ("excl", '!'),
    ("quest", '?'),
    ("period", '.'),
    ("lpar", '('),
    ("rpar", ')'),
    ("ast", '*'),
    ("plus", '+'),
    ("equals", '='),
    ("commat", '@'),
    ("lowbar", '_'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("verbar", '|'),
    ("grave", '`'),
];

/// What numeric references to U+0080..=U+009F stand for (windows-1252's characters; `None`:
/// the code point itself).
const C1: [Option<char>; 32] = [
    Some('\u{20AC}'),
    None,
    Some('\u{201A}'),
    Some('\u{0192}'),
    Some('\u{201E}'),
    Some('\u{2026}'),
    Some('\u{2020}'),
    Some('\u{2021}'),
    Some('\u{02C6}'),
    Some('\u{2030}'),
    Some('\u{0160}'),
    Some('\u{2039}'),
    Some('\u{0152}'),
    None,
    Some('\u{017D}'),
    None,
    None,
    Some('\u{2018}'),
    Some('\u{2019}'),
    Some('\u{201C}'),
    Some('\u{201D}'),
    Some('\u{2022}'),
    Some('\u{2013}'),
    Some('\u{2014}'),
    Some('\u{02DC}'),
    Some('\u{2122}'),
    Some('\u{0161}'),
    Some('\u{203A}'),
    Some('\u{0153}'),
    None,
    Some('\u{017E}'),
    Some('\u{0178}'),
];

/// A name a browser decodes even without `;`.
fn legacy(name: &str) -> Option<char> {
    match name {
        "amp" | "AMP" => Some('&'),
        "lt" | "LT" => Some('<'),
        "gt" | "GT" => Some('>'),
        "quot" | "QUOT" => Some('"'),
        "COPY" => Some('\u{A9}'),
        "REG" => Some('\u{AE}'),
        // Below 96: 0xA0 + i is a Latin-1 byte, which is its own code point.
        _ => (LATIN1.iter().position(|n| *n == name)).map(|i| char::from(0xA0 + i as u8)),
    }
}

/// What a reference after `&` turned out to be.
#[derive(Debug, PartialEq)]
enum Reference {
    /// This character, written with this many bytes after the `&`.
    Char(char, usize),
    /// Not a reference: the `&` is text.
    Literal,
    /// A name this module does not carry.
    Unknown,
}

/// The reference that starts right after an `&`, in an attribute value.
fn reference(after: &[u8]) -> Reference {
    match after.first() {
        Some(b'#') => numeric(&after[1..]),
        Some(c) if c.is_ascii_alphanumeric() => named(after),
        _ => Reference::Literal,
    }
}

/// `&#…`: decimal, or hexadecimal after `x`/`X`; `;` optional.
fn numeric(after_hash: &[u8]) -> Reference {
    let (radix, start) = match after_hash.first() {
        Some(b'x' | b'X') => (16, 1),
        _ => (10, 0),
    };
    let digits = after_hash[start..]
        .iter()
        .take_while(|&&c| char::from(c).is_digit(radix))
        .count();
    if digits == 0 {
        // "&#" or "&#x" with no digits is text.
        return Reference::Literal;
    }
    // Past U+10FFFF the value no longer matters (it becomes U+FFFD): saturate there.
    let value = after_hash[start..start + digits]
        .iter()
        .filter_map(|&c| char::from(c).to_digit(radix))
        .fold(0u32, |v, d| (v * radix + d).min(0x11_0000));
    let mut len = 1 + start + digits;
    if after_hash.get(start + digits) == Some(&b';') {
        len += 1;
    }
    let ch = match value {
        0 => '\u{FFFD}',
        0x80..=0x9F => {
            C1[value as usize - 0x80].unwrap_or_else(|| char::from_u32(value).unwrap_or('\u{FFFD}'))
        }
        // Surrogates and values past U+10FFFF.
        _ => char::from_u32(value).unwrap_or('\u{FFFD}'),
    };
    Reference::Char(ch, len)
}

/// `&name;` or a legacy `&name`. The longest name in the standard's table wins; in an
/// attribute, one without `;` followed by `=` or an alphanumeric is text.
fn named(after: &[u8]) -> Reference {
    let run = after
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    // ASCII alphanumerics: always a `str`.
    let name = std::str::from_utf8(&after[..run]).unwrap_or_default();
    match after.get(run) {
        // With `;`, only the whole run can match (every name is alphanumeric).
        Some(b';') => match legacy(name).or_else(|| {
            PUNCTUATION
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| *c)
        }) {
            Some(c) => Reference::Char(c, run + 1),
            None => Reference::Unknown,
        },
        // Without: a legacy name that is a shorter prefix is followed by an alphanumeric,
        // so only the whole run can decode, and not before `=`.
        next => match legacy(name) {
            Some(c) if next != Some(&b'=') => Reference::Char(c, run),
            _ => Reference::Literal,
        },
    }
}

/// The text an attribute value written as `raw` stands for; `None` when it holds a named
/// reference this module does not carry (its meaning is then not certain).
pub(in crate::inject) fn decode_attribute(raw: &str) -> Option<Cow<'_, str>> {
    let bytes = raw.as_bytes();
    let Some(first) = memchr::memchr(b'&', bytes) else {
        return Some(Cow::Borrowed(raw));
    };
    let mut out = String::with_capacity(raw.len());
    // `raw[..copied]` is in `out`; the next `&` is searched for from `from`.
    let (mut copied, mut amp) = (0, first);
    loop {
        match reference(&bytes[amp + 1..]) {
            Reference::Char(ch, len) => {
                out.push_str(&raw[copied..amp]);
                out.push(ch);
                copied = amp + 1 + len;
            }
            Reference::Literal => {}
            Reference::Unknown => return None,
        }
        let from = copied.max(amp + 1);
        match memchr::memchr(b'&', &bytes[from..]) {
            Some(next) => amp = from + next,
            None => break,
        }
    }
    out.push_str(&raw[copied..]);
    Some(Cow::Owned(out))
}

/// `text` written for a double-quoted attribute value a browser reads back as `text`.
/// lol_html's `set_attribute` writes the value between double quotes escaping `"` only, so
/// `&` must be escaped here (and `"` is, so the value is right in either case).
pub(in crate::inject) fn encode_attribute(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '"']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(ch),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(raw: &str) -> Option<String> {
        decode_attribute(raw).map(Cow::into_owned)
    }

    #[test]
    fn numeric_references_decode_with_or_without_semicolon() {
        assert_eq!(
            decoded("script-src &#39;self&#39; &#x27;none&#X27;").as_deref(),
            Some("script-src 'self' 'none'")
        );
        assert_eq!(
            decoded("a&#39b&#x3b;c&#x3bc").as_deref(),
            Some("a'b;c\u{3BC}")
        );
        assert_eq!(
            decoded("&#0;&#xD800;&#x110000;&#99999999999999;").as_deref(),
            Some("\u{FFFD}".repeat(4).as_str())
        );
        assert_eq!(
            decoded("&#x80;&#129;&#x9F;&#13;").as_deref(),
            Some("\u{20AC}\u{81}\u{178}\r")
        );
        assert_eq!(
            decoded("&# &#x; &#xg &").as_deref(),
            Some("&# &#x; &#xg &"),
            "no digits: text"
        );
    }

    #[test]
    fn named_references_decode_as_in_an_attribute() {
        assert_eq!(
            decoded("&apos;self&apos;&semi; &quot;x&QUOT; &lt;&GT; &amp;amp;").as_deref(),
            Some("'self'; \"x\" <> &amp;")
        );
        // Legacy names go without `;`, but not before `=` or an alphanumeric.
        assert_eq!(
            decoded("a&amp b&ampc d&amp=e &copy").as_deref(),
            Some("a& b&ampc d&amp=e \u{A9}")
        );
        assert_eq!(
            decoded("&nbsp;&yuml;&frac12 &REG;").as_deref(),
            Some("\u{A0}\u{FF}\u{BD} \u{AE}")
        );
        // A name that is not in the table at all, without `;`: text.
        assert_eq!(decoded("/r?a=1&b=2&zzz").as_deref(), Some("/r?a=1&b=2&zzz"));
    }

    #[test]
    fn names_this_module_does_not_carry_make_the_value_unreadable() {
        assert_eq!(decoded("script-src &rsquo;self&rsquo;"), None);
        assert_eq!(decoded("&notin;"), None);
        assert_eq!(decoded("&zzz;"), None, "not certain it is not a name");
    }

    #[test]
    fn values_without_references_are_borrowed() {
        assert!(matches!(
            decode_attribute("script-src 'self'"),
            Some(Cow::Borrowed(_))
        ));
        assert!(matches!(
            encode_attribute("script-src 'self'"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn encoding_escapes_what_set_attribute_leaves() {
        assert_eq!(encode_attribute("a&b\"c'd<e"), "a&amp;b&quot;c'd<e");
    }

    proptest::proptest! {
        #[test]
        fn what_is_encoded_decodes_back(text in "[ -~\u{A0}-\u{17F}]{0,40}") {
            let encoded = encode_attribute(&text);
            proptest::prop_assert_eq!(decoded(&encoded), Some(text));
        }
    }
}
