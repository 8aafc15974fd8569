//! Finding the app's session cookie among the request's `Cookie` headers.
//!
//! The proxy must name the user the app sees, so it reads the session cookie only from a
//! `Cookie` header that every common framework splits the same way. They disagree on a lot
//! (observed with each one's own parser on the same headers):
//!
//! - Python's `http.cookies.SimpleCookie` (Bottle, CherryPy, older aiohttp) reads a value that
//!   starts with `"` up to the closing quote, across `;`; splits pairs at whitespace too;
//!   stops at the first pair it cannot read (a `"`, `\`, space or empty pair inside a value,
//!   a `[` in a name), keeping what came before; ignores the whole header when a pair has no
//!   `=`, when an attribute name (`path`, `expires`, `version`, …) comes first, and raises on a
//!   name with `/`, `,`, `(`… or on a `$name` after the first cookie. A later duplicate wins.
//! - Werkzeug (Flask) reads quoted values across `;` too, and skips a pair it cannot read (a
//!   space or `"` inside its value) up to the next `;`. The first duplicate wins.
//! - Django splits on `;` only, trims names and values and strips quotes; the last duplicate
//!   wins.
//! - Node's `cookie` (Express) splits on `;`, trims, strips quotes, percent-decodes; the first
//!   wins.
//! - Rack (Rails) splits on `;` followed by spaces (before 2.2 on `,` too), keeps a tab or
//!   trailing space as part of the name or value, keeps quotes, form-decodes values (`+` is a
//!   space); the first wins.
//! - PHP splits on `;`, drops leading spaces from names, turns `.`, ` ` and an unclosed `[`
//!   in a name into `_` (so `laravel.session` is `laravel_session`), makes `name[x]` an array,
//!   url-decoded names before 8.0.24/8.1.11, keeps quotes; the first wins.
//! - Go's net/http splits on `;`, strips quotes, skips a cookie whose value has a `"` or `\`
//!   inside; the first wins.
//!
//! So [`session_cookie`] returns a value only when:
//!
//! 1. the session cookie is sent once, as `name=value` right at the start of a pair (after
//!    `;` and spaces), its value non-empty, unquoted, without space, `"` or `\`;
//! 2. no other spelling of its name appears anywhere, even where only one framework would
//!    split (after `,` or whitespace, inside quotes) or after PHP's renaming, percent-decoding
//!    and trimming ([`lookalike_count`]);
//! 3. every pair before it is plain ([`plain_pair`]): SimpleCookie and Werkzeug read it as
//!    one pair and go on (no quote that is not a whole quoted value, no `\`, no space inside a
//!    value, no empty pair, no attribute name first);
//! 4. no pair after it could make SimpleCookie drop or reject the header ([`harmless_pair`]):
//!    each has a legal name and `=`, and no whitespace inside.
//!
//! Ordinary headers pass: `a=1; b=2`, values with `=` or base64's `+/=`, Express's `s%3A…`,
//! Laravel's encoded JSON, Rails' `--`, JWTs, PHP ids with `,`.

use http::HeaderMap;
use http::header::COOKIE;

/// The raw value of cookie `name`, when the request carries it exactly once and every common
/// framework would read that same cookie (see the module's rules).
///
/// Two cookies of that name (another path or a sibling subdomain can plant one) are
/// ambiguous: frameworks disagree on which one wins, so the proxy could name a different
/// user than the app sees. That, a header that frameworks split differently, and a `Cookie`
/// header that is not text, is no identity. The value is returned as sent (resolvers decode
/// it as their format requires).
pub fn session_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    if name.is_empty() {
        return None;
    }
    let mut found = None;
    // A cookie (not an attribute name, not a `$` name) came first: SimpleCookie's state.
    let mut cookie_seen = false;
    for (field, header) in headers.get_all(COOKIE).iter().enumerate() {
        let text = visible_text(header.as_bytes())?;
        // Fields after the first reach the app joined with "; " (proxy::headers).
        for (i, pair) in text.split(';').enumerate() {
            let at_pair_start = if i == 0 && field == 0 {
                pair
            } else {
                pair.trim_start_matches(' ')
            };
            let lookalikes = lookalike_count(pair, name);
            if let Some(value) = at_pair_start
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
            {
                if found.is_some() || lookalikes != 1 || !all_value_bytes(value) {
                    return None;
                }
                found = Some(value);
                cookie_seen = true;
            } else if lookalikes > 0 {
                return None;
            } else if found.is_none() {
                if !plain_pair(pair, &mut cookie_seen) {
                    // Whatever follows, some framework would not read it as sent.
                    return None;
                }
            } else if !harmless_pair(pair) {
                return None;
            }
        }
    }
    found.filter(|v| !v.is_empty())
}

/// The header as text when it is visible ASCII, tabs and spaces (what
/// [`HeaderValue::to_str`](http::HeaderValue::to_str) accepts). Checked without an early
/// exit, so that it vectorises: a header is a few hundred bytes on every request.
fn visible_text(bytes: &[u8]) -> Option<&str> {
    let visible = bytes.iter().fold(true, |ok, &b| {
        ok & ((0x20..0x7f).contains(&b) | (b == b'\t'))
    });
    visible.then(|| std::str::from_utf8(bytes).ok()).flatten()
}

/// Whether every byte of `value` is a [value byte](is_value_byte), without an early exit.
fn all_value_bytes(value: &str) -> bool {
    value.bytes().fold(true, |ok, b| ok & is_value_byte(b))
}

/// A byte every parser keeps inside an unquoted value: visible ASCII but `"`, `;` and `\`
/// (RFC 6265's cookie-octet, plus `,`, which PHP session ids use and all of them keep).
fn is_value_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'"' | b';' | b'\\')
}

/// A byte SimpleCookie accepts in a name (anything else raises or stops it).
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:".contains(&b)
}

/// Names SimpleCookie takes for attributes of the cookie before (Python 3.13 added
/// `partitioned`).
const ATTRIBUTES: &[&str] = &[
    "expires",
    "path",
    "comment",
    "domain",
    "max-age",
    "secure",
    "httponly",
    "version",
    "samesite",
    "partitioned",
];

fn is_attribute(name: &str) -> bool {
    ATTRIBUTES.iter().any(|a| name.eq_ignore_ascii_case(a))
}

/// A pair before the session cookie that every parser reads as one pair and reads on past:
/// `name=value`, the name of SimpleCookie's characters, the value plain or wholly quoted.
fn plain_pair(pair: &str, cookie_seen: &mut bool) -> bool {
    let pair = pair.trim_matches([' ', '\t']);
    let Some((name, value)) = pair.split_once('=') else {
        // No `=` (an empty pair included): SimpleCookie stops or drops the header.
        return false;
    };
    if name.is_empty() || !name.bytes().all(is_name_byte) || !simple_cookie_name(name, cookie_seen)
    {
        return false;
    }
    match value.strip_prefix('"') {
        Some(quoted) => quoted
            .strip_suffix('"')
            .is_some_and(|inner| inner.bytes().all(|b| b == b' ' || is_value_byte(b))),
        None => all_value_bytes(value),
    }
}

/// Whether SimpleCookie takes `name` in its stride: an attribute name before any cookie
/// voids the header, and a `$name` after one raises unless it names an attribute.
fn simple_cookie_name(name: &str, cookie_seen: &mut bool) -> bool {
    if let Some(attribute) = name.strip_prefix('$') {
        !*cookie_seen || is_attribute(attribute)
    } else if is_attribute(name) {
        *cookie_seen
    } else {
        *cookie_seen = true;
        true
    }
}

/// A pair after the session cookie that cannot make SimpleCookie drop or reject the whole
/// header (it stops quietly at anything else): empty, or a legal name, `=`, and no
/// whitespace inside.
fn harmless_pair(pair: &str) -> bool {
    let pair = pair.trim_matches([' ', '\t']);
    if pair.is_empty() {
        return true;
    }
    let Some((name, _)) = pair.split_once('=') else {
        return false;
    };
    let mut cookie_seen = true;
    !name.is_empty()
        && name.bytes().all(is_name_byte)
        && simple_cookie_name(name, &mut cookie_seen)
        && !pair.contains([' ', '\t'])
}

/// How many times (0, 1, or more) some framework could read a cookie named like `name` in
/// one `;`-separated pair: a name starts at the pair's start or after `,` or whitespace (old
/// Rack and SimpleCookie split there, and a quoted value hides nothing from the others), and
/// runs to the next `=`.
fn lookalike_count(pair: &str, name: &str) -> usize {
    let bytes = pair.as_bytes();
    let mut count = 0;
    let mut next_eq = None;
    // Only boundaries can start a name: jump between them (a JWT or an id has none).
    let boundaries = memchr::memchr3_iter(b',', b' ', b'\t', bytes).map(|at| at + 1);
    for start in std::iter::once(0).chain(boundaries) {
        if bytes.get(start).is_none_or(|b| matches!(b, b' ' | b'\t')) {
            continue;
        }
        let eq = match next_eq {
            Some(eq) if eq >= start => eq,
            _ => match memchr::memchr(b'=', &bytes[start..]) {
                Some(offset) => start + offset,
                None => break,
            },
        };
        next_eq = Some(eq);
        if same_name(&pair[start..eq], name) {
            count += 1;
            if count > 1 {
                break;
            }
        }
    }
    count
}

/// Whether some framework reads the cookie name `raw` (as sent, up to its `=`) as `name`:
/// trimmed (Node, Werkzeug, Django), with PHP's renaming (`.`, spaces, an unclosed `[` are
/// `_`; `name[x]` is an array under `name`) and old PHP's url-decoding.
fn same_name(raw: &str, name: &str) -> bool {
    // A spelling is at most three bytes (`%XX`) per byte of the name, then whitespace.
    let limit = 3 * name.len() + 1;
    if raw.len() > limit
        && !raw.as_bytes()[limit..]
            .iter()
            .all(|b| matches!(b, b' ' | b'\t'))
    {
        return false;
    }
    let trimmed = raw.trim_end_matches([' ', '\t']);
    let array = trimmed
        .find('[')
        .filter(|&at| trimmed[at..].contains(']'))
        .map(|at| &trimmed[..at]);
    [Some(trimmed), Some(raw), array]
        .into_iter()
        .flatten()
        .any(|spelling| php_name(spelling).eq(php_name(name)))
}

/// A cookie name as PHP would key it, url-decoded as PHP before 8.0.24 did: leading spaces
/// dropped; ` `, `.`, `[` as `_`.
fn php_name(raw: &str) -> impl Iterator<Item = u8> + '_ {
    let bytes = raw.as_bytes();
    let mut at = 0;
    let mut leading = true;
    std::iter::from_fn(move || {
        loop {
            let b = *bytes.get(at)?;
            let (decoded, width) = match b {
                b'%' => match (
                    bytes.get(at + 1).and_then(|&h| hex(h)),
                    bytes.get(at + 2).and_then(|&l| hex(l)),
                ) {
                    (Some(h), Some(l)) => (h << 4 | l, 3),
                    _ => (b, 1),
                },
                b'+' => (b' ', 1),
                _ => (b, 1),
            };
            at += width;
            if leading && decoded == b' ' {
                continue;
            }
            leading = false;
            return Some(match decoded {
                b' ' | b'.' | b'[' => b'_',
                other => other,
            });
        }
    })
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The `name=value` pairs of one `Cookie` header, names trimmed; pairs without `=` are
/// skipped.
fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.trim(), value))
}

/// Every value of cookie `name` in the request, read leniently (each `Cookie` header split at
/// `;`, names trimmed). Only for values that carry their own proof (the proxy's signed
/// markers): a messy header must not hide them, and a planted one proves nothing.
pub fn cookie_values<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        // Most requests carry no marker: no splitting for them.
        .filter(move |h| memchr::memmem::find(h.as_bytes(), name.as_bytes()).is_some())
        .filter_map(|h| h.to_str().ok())
        .flat_map(pairs)
        .filter(move |(n, _)| *n == name)
        .map(|(_, value)| value.trim())
}

/// The request's cookies as the browser will send them once it holds `value` for `name`: one
/// `Cookie` header with the other cookies kept and `name` replaced (or added). What a
/// resolver needs to look up the session a response sets.
pub fn with_session_cookie(headers: &HeaderMap, name: &str, value: &str) -> HeaderMap {
    let mut line = String::with_capacity(name.len() + value.len() + 1);
    line.push_str(name);
    line.push('=');
    line.push_str(value);
    for text in headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
    {
        for pair in text.split(';') {
            let pair = pair.trim();
            let other = pair.split_once('=').is_none_or(|(n, _)| n.trim() != name);
            if other && !pair.is_empty() {
                line.push_str("; ");
                line.push_str(pair);
            }
        }
    }
    let mut replaced = HeaderMap::with_capacity(1);
    if let Ok(value) = http::HeaderValue::from_str(&line) {
        replaced.insert(COOKIE, value);
    }
    replaced
}

/// The names of the cookies a request carries, comma-separated, for a debug line (never
/// their values).
pub(super) fn cookie_names(headers: &HeaderMap) -> String {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(pairs)
        .map(|(name, _)| name)
        .filter(|name| !name.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_session_a_response_sets_replaces_the_requests() {
        let h = headers(&["a=1; session=old", "b=2"]);
        let replaced = with_session_cookie(&h, "session", "new");
        assert_eq!(replaced.get(COOKIE).unwrap(), "session=new; a=1; b=2");
        assert_eq!(session_cookie(&replaced, "session"), Some("new"));
        let fresh = with_session_cookie(&HeaderMap::new(), "session", "v");
        assert_eq!(fresh.get(COOKIE).unwrap(), "session=v");
    }

    #[test]
    fn a_cookie_sent_twice_is_ambiguous() {
        assert_eq!(
            session_cookie(&headers(&["session=a; session=b"]), "session"),
            None
        );
        assert_eq!(
            session_cookie(&headers(&["session=a", "session=b"]), "session"),
            None
        );
        let mut h = headers(&["session=a"]);
        h.append(COOKIE, HeaderValue::from_bytes(b"x=\xff").unwrap());
        assert_eq!(
            session_cookie(&h, "session"),
            None,
            "a non-text Cookie header is refused"
        );
    }

    #[test]
    fn finds_the_cookie_across_headers_and_ignores_lookalikes() {
        let h = headers(&["my_session=no; a=1", "session=abc.def; b=2"]);
        assert_eq!(session_cookie(&h, "session"), Some("abc.def"));
        assert_eq!(session_cookie(&h, "a"), Some("1"));
        assert_eq!(session_cookie(&h, "missing"), None);
    }

    #[test]
    fn names_are_listed_without_values() {
        let h = headers(&["a=1; session=secret-value", "b=2"]);
        assert_eq!(cookie_names(&h), "a, session, b");
    }

    #[test]
    fn empty_and_malformed_pairs_are_no_identity() {
        // SimpleCookie drops a whole header with a pair that has no `=`.
        let h = headers(&["session=; junk; =x; session2=q"]);
        assert_eq!(session_cookie(&h, "session"), None);
        assert_eq!(session_cookie(&h, "session2"), None);
        assert_eq!(session_cookie(&headers(&["session="]), "session"), None);
    }

    fn one(header: &str) -> Option<&str> {
        // Leaked: each test header lives for the test's duration anyway.
        let h: &'static HeaderMap = Box::leak(Box::new(headers(&[header])));
        session_cookie(h, "session")
    }

    #[test]
    fn ordinary_headers_are_read() {
        for (header, value) in [
            ("session=abc", "abc"),
            ("a=1; session=abc; b=2", "abc"),
            ("a=1;session=abc", "abc"),
            ("a=1;  session=abc;", "abc"),
            ("session=abc; ", "abc"),
            (
                "session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_x",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_x",
            ),
            ("session=s%3Aabc.def%2Bx", "s%3Aabc.def%2Bx"),
            ("session=ab+c/d==", "ab+c/d=="),
            ("session=a=b=c", "a=b=c"),
            ("session=YWJj--ZGVm--Z2hp", "YWJj--ZGVm--Z2hp"),
            ("session=a1,b2-c3", "a1,b2-c3"),
            (
                "_ga=GA1.2.3.4; a=\"quoted\"; b=\"with space\"; session=abc",
                "abc",
            ),
            ("a=; b=x,y; c={}[]; $Version=1; session=abc", "abc"),
            (
                "session=abc; path=/; consent={\"a\":1}; x=\"; y=a\\b;;",
                "abc",
            ),
            ("my_session=1; session_id=2; sessions=3; session=abc", "abc"),
        ] {
            assert_eq!(one(header), Some(value), "{header}");
        }
    }

    #[test]
    fn the_reported_headers_are_no_identity() {
        // SimpleCookie and Werkzeug read one cookie `x` up to the closing quote.
        assert_eq!(one("x=\"a; session=attacker; y=b\""), None);
        // Rack before 2.2 splits at the comma (first wins); SimpleCookie at the space (last
        // wins).
        assert_eq!(one("foo=1, session=alice; session=bob"), None);
        assert_eq!(one("session=bob; foo=1, session=alice"), None);
    }

    #[test]
    fn headers_frameworks_split_differently_are_no_identity() {
        for header in [
            // Quotes.
            "session=\"abc\"",
            "session=\"ab;c\"",
            "session=ab\"c",
            "a=\"x\\\"; session=evil; y=\\\"\"; session=good",
            "a={\"x\":1}; session=abc",
            "a=\"b; session=abc",
            // Whitespace.
            "session=a b",
            "session=abc ; a=1",
            "session = abc",
            " session=abc",
            "a=1;\tsession=abc",
            "a=1 session=abc",
            "session=abc; a=1 session=evil",
            "session=abc; a=b c",
            // Commas.
            "session=abc,session=evil",
            "a=1,session=evil; session=abc",
            // Other spellings: PHP's renaming, old PHP's decoding, trimming.
            "session[x]=1; session=abc",
            "session=abc; session[x]=1",
            "session =evil; session=abc",
            "%73ession=evil; session=abc",
            // Pairs SimpleCookie stops at, drops the header for, or raises on.
            "junk; session=abc",
            "session=abc; junk",
            "a=1;; session=abc",
            "=a; session=abc",
            "session=abc; =a",
            "path=/; session=abc",
            "a/b=1; session=abc",
            "session=abc; a/b=1",
            "session=abc; $foo=1",
            "a=x\\y; session=abc",
            // Duplicates and an empty value.
            "session=abc; session=abc",
            "session=",
        ] {
            assert_eq!(one(header), None, "{header}");
        }
    }

    #[test]
    fn php_spellings_of_the_name_are_duplicates() {
        let name = "laravel_session";
        for header in [
            "laravel.session=evil; laravel_session=good",
            "laravel session=evil; laravel_session=good",
            "laravel[session=evil; laravel_session=good",
            "laravel_session=good; laravel%2Esession=evil",
            "laravel_session=good; laravel+session=evil",
        ] {
            let h = headers(&[header]);
            assert_eq!(session_cookie(&h, name), None, "{header}");
        }
        let h = headers(&["laravel_sessions=1; xlaravel_session=2; laravel_session=good"]);
        assert_eq!(session_cookie(&h, name), Some("good"));
        let h = headers(&["connect_sid=1; connect.sid=s%3Ax"]);
        assert_eq!(session_cookie(&h, "connect.sid"), None);
    }

    #[test]
    fn pairs_before_the_session_count_across_header_fields() {
        assert_eq!(
            session_cookie(&headers(&["x=\"a", "session=abc"]), "session"),
            None
        );
        assert_eq!(
            session_cookie(&headers(&["a=1", " session=abc"]), "session"),
            Some("abc"),
            "joined with \"; \" for the app"
        );
    }

    #[test]
    fn long_headers_are_scanned_in_linear_time() {
        let commas = format!(
            "a={}{}=1; session=abc",
            ",a".repeat(20_000),
            " ".repeat(20_000)
        );
        let started = std::time::Instant::now();
        assert_eq!(one(&commas), None);
        let spaces = format!("session=abc; a={}", ", ".repeat(20_000));
        assert_eq!(one(&spaces), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
