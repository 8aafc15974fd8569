//! Cookie header parsing: `identity::session_cookie`, `cookie_values` and
//! `with_session_cookie` over arbitrary `Cookie` fields (values `HeaderValue` refuses are
//! skipped, as hyper never hands them over).
//!
//! Input: the cookie name, a newline, then the `Cookie` fields separated by `\0` (the last
//! one, after a `\x01`, is the value for `with_session_cookie`). Checked:
//!
//! - the session cookie, when found, is non-empty, is one of `cookie_values`, and is what
//!   the same fields give once `proxy::headers::merge_cookies` joined them (the proxy
//!   identifies the user from the fields the browser sent; the app reads the joined one);
//! - `with_session_cookie` leaves exactly one value for the name, the one given (for a
//!   name `session.cookie` accepts and a value a `Set-Cookie` header can carry).
#![no_main]

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use intercom_secure_proxy::identity::{cookie_values, session_cookie, with_session_cookie};
use intercom_secure_proxy::proxy::headers::merge_cookies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(name) = std::str::from_utf8(&data[..newline]) else {
        return;
    };
    let rest = &data[newline + 1..];
    let (fields, new_value) = match rest.iter().position(|&b| b == 1) {
        Some(at) => (&rest[..at], std::str::from_utf8(&rest[at + 1..]).ok()),
        None => (rest, None),
    };
    let mut headers = HeaderMap::new();
    for field in fields.split(|&b| b == 0) {
        if let Ok(value) = HeaderValue::from_bytes(field) {
            headers.append(COOKIE, value);
        }
    }

    let found = session_cookie(&headers, name);
    let values: Vec<&str> = cookie_values(&headers, name).collect();
    if let Some(value) = found {
        assert!(!value.is_empty());
        assert!(
            values.contains(&value),
            "session cookie {value:?} is not among cookie_values {values:?}"
        );
    }

    let mut merged = headers.clone();
    merge_cookies(&mut merged);
    assert!(merged.get_all(COOKIE).iter().count() <= 1);
    assert_eq!(
        session_cookie(&merged, name),
        found,
        "the fields and their merge name different sessions"
    );

    if let Some(new_value) = new_value {
        let replaced = with_session_cookie(&headers, name, new_value);
        // What the proxy can pass: a name `session.cookie` accepts (config/session.rs), and
        // a value from a `Set-Cookie` header that is text (`to_str`: visible ASCII, spaces
        // and tabs), without `;`. A name or value beyond ASCII gives a header the readers,
        // which take text only, do not read (fuzz/RESULTS.md, cookie_header).
        let config_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        let text_value = new_value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) || b == b'\t');
        if config_name && text_value && !new_value.contains(';') {
            let after: Vec<&str> = cookie_values(&replaced, name).collect();
            assert_eq!(
                after,
                [new_value.trim()],
                "with_session_cookie gave {replaced:?}"
            );
        }
    }
});
