//! Vectors made by Django itself: 5.2.19 (PyPI, Python 3.11) for the current format, through
//! the real session stores (`signed_cookies.SessionStore().save()` then `.session_key`,
//! `db.SessionStore().encode()`), each read back by Django before being pasted; 3.2.25 for
//! the pre-3.1 format (`encode()` under DEFAULT_HASHING_ALGORITHM = "sha1", which called
//! `_legacy_encode`) and for a sha1-signed cookie that Django 5.2 refuses. Timestamps are the
//! signing machine's clock.

use serde_json::json;

use super::*;

const KEY: &[u8] = b"django-insecure-9f#k2!current-secret-key-for-tests";
const OLD_KEY: &[u8] = b"django-insecure-old-rotated-key-0001";
const KEYS: &[&[u8]] = &[KEY, OLD_KEY];
/// The timestamp of every 5.2 vector but COOKIE_PLAIN (base62 `1xZYJN`).
const TS: u64 = 1_796_410_033;
const AGE: Option<u64> = Some(DEFAULT_SESSION_COOKIE_AGE);
const USER_HASH: &str = "5f1d8e0a3b9c7d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e";

/// signed_cookies with `_auth_user_id` "42", `_auth_user_backend`, `_auth_user_hash`:
/// compressed already (zlib saved more than one byte).
const COOKIE: &str = ".eJxVzEsOwiAYBOC7sDaklCLFpXvPQP4XUjU0Ke3KeHdp0oVuZ76Zt4qwrTluVZY4sbqooVen3xCBnlL2hh9Q7rOmuazLhHon-mirvs0sr-th_w4y1NzWLhkepQOLgTz3MqQzjNiRYSsueQhoyLITnwIYtOTYS0imedd8EPX5AjhfOY0:1xZYJN:-nvANU_qbmglfTspjI-0lMJuDdNc45gUF6r9iBIQa08";
/// The same session plus `cart`: 60 items.
const COOKIE_CART: &str = ".eJxV0d1OhDAQBeB36bUSpjOz0L303icwhvQPQVdIgL0yvrus2R707qSdnq9pv0znr9vQXde8dGMyZyPWPPxdDD5-5Om2k9799DZXcZ62ZQzVbaS6767V85zy5ek--69g8Ouwn9aeUptrz8HFJtks_cm3oY6UOGvfeBcoctLc9M5T4Kipya6nfV73eZf30uiXzZxfzLjlz8d6X_gNVIItgUuQErSEUwlNCW0JDoVHNboJ5YR2Qj2hnwAQBAJBMCwMe9wfhoVhYVgYFoaFYWFYGAyDYfDxSDAYBsNgGAyDYTAMgSEwBIYcPwFDYAgMgSEwBIbCUBgKQ2Ho8d0wFIbCUBjqzOv3D1cG3IE:1xZYJN:iW1GdP6zgz-SycMGBkLVBSQjoib-DaQTVcUGdBST5UI";
/// COOKIE's session signed when OLD_KEY was SECRET_KEY.
const COOKIE_OLD_KEY: &str = ".eJxVzEsOwiAYBOC7sDaklCLFpXvPQP4XUjU0Ke3KeHdp0oVuZ76Zt4qwrTluVZY4sbqooVen3xCBnlL2hh9Q7rOmuazLhHon-mirvs0sr-th_w4y1NzWLhkepQOLgTz3MqQzjNiRYSsueQhoyLITnwIYtOTYS0imedd8EPX5AjhfOY0:1xZYJN:Lw75MQrpEgefe27mf5a6b7V_Sru9-11VbVN-a42yg-E";
/// `{"_auth_user_id": "7"}`, too small to compress; signed at 1796410040.
const COOKIE_PLAIN: &str =
    "eyJfYXV0aF91c2VyX2lkIjoiNyJ9:1xZYJU:XtnXePt1OpfaRcDv5z7LsP7gEfVuNgEnAnG1TzWrAdU";
/// db.SessionStore().encode(COOKIE's session + `_session_expiry` 3600, `name` "Zoë ✓").
const DB: &str = ".eJxVjcsOwiAURH_FsDYESimlS_f-gGnSXOBi8QGmtInG-O_SpAvdzjkz8yYDLPM4LBmnITjSkboi-9_QgL1iXIm7QDwnalOcp2DoqtCNZnpMDm-Hzf0bGCGPpS09dy0yEEZb5SqsfQOtYZY7gdIr0IZb4SQqr4EbYaVTqD0vviy-xnU0Y84hxQGfjzC9SCcaxvYkwh3LwSn1C2Nodv1SKS7I5wuBykhx:1xZYJN:Yi07GB1XIfmhxJ7MHf7s-HmcJHGrtmtnAIARUL_lJ1o";
/// db.SessionStore().encode({"_auth_user_id": "7"}), uncompressed.
const DB_SMALL: &str =
    "eyJfYXV0aF91c2VyX2lkIjoiNyJ9:1xZYJN:5i0odCOyY7aKXOURM4QVMGOl9lEm_o57dNHOLj9VU-o";
/// signing.dumps({"x": "a" * 300000}, salt=SIGNED_COOKIES_SALT, compress=True): Django reads
/// it; it inflates past MAX_INFLATED.
const BOMB: &str = ".eJztwQEJAEAIBLAuF8M230IQu38P2TbpVB4AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAByS_X6BJBc:1xZYMy:_xqZsu1macw_BMWO1Rd4Bnfyn6b2i7oL-kRK7nutF-g";
/// The same with "a" * 200000: within the bound.
const BIG: &str = ".eJztwUENADAIBDAvJwM3c0FC8D4N_NtOOpUHAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAJxlPyhWGMs:1xZYMy:F96wvYq6KjnpdWlPGuK5bvCtz0xrxZt_IPseowfBOqk";
/// TimestampSigner(salt=SIGNED_COOKIES_SALT).sign("!!not-base64!!"): signed, not base64.
const NOT_BASE64: &str = "!!not-base64!!:1xZYMy:8Mn_OxfXEnJQo4I2RjjR6TjhQCHFTP7EMqotJo6DW80";
/// The same over b64_encode(b"{not json").
const NOT_JSON: &str = "e25vdCBqc29u:1xZYMy:cJa9OIMzT0i9SY2RXaOuGNCDkRtlUeV-Etn6Y81c8Rc";
/// Django 3.2, DEFAULT_HASHING_ALGORITHM = "sha1": a signed_cookies session signed with
/// sha1 (signing.dumps), at 1796410042. Django 5.2 raises BadSignature.
const SHA1_COOKIE: &str = ".eJxVjDsOwjAQBe-yNbL8d0JJzxmstXeDA8iW4qRC3B0ipYD2zcx7QcRtLXHrvMSZ4AxWw-l3TJgfXHdCd6y3JnKr6zInsSvioF1cG_Hzcrh_BwV7-dYSVdLZkGU3eRnUoEeDNrnsKfAwjVJpY50P8P4ADtAw4g:1xZYJW:7FtiouM77LcPOAGnuYK2hw6bTjk";
/// Django 3.2, same setting: db.SessionStore().encode() of `_auth_user_id` "42",
/// `_auth_user_backend`, `_auth_user_hash` LEGACY_USER_HASH. Django 5.2 decodes it to {}.
const LEGACY: &str = "MmIyZmZlNDA2MDg3MGM1NmNhNjExMDIxY2ViMzE1ZDc1ODM2ZDlhNzp7Il9hdXRoX3VzZXJfaWQiOiI0MiIsIl9hdXRoX3VzZXJfYmFja2VuZCI6ImRqYW5nby5jb250cmliLmF1dGguYmFja2VuZHMuTW9kZWxCYWNrZW5kIiwiX2F1dGhfdXNlcl9oYXNoIjoiMGExYjJjM2Q0ZTVmNjA3MTgyOTNhNGI1YzZkN2U4ZjkwMTIzNDU2NyJ9";
const LEGACY_USER_HASH: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";

fn auth(user: &str, hash: &str) -> Value {
    json!({
        "_auth_user_id": user,
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": hash,
    })
}

fn cookie(token: &str, keys: &[&[u8]], now: u64) -> Result<Value, DjangoSigningError> {
    loads(token, keys, SIGNED_COOKIES_SALT, AGE, now)
}

#[test]
fn signed_cookies_sessions() {
    assert_eq!(cookie(COOKIE, KEYS, TS + 5), Ok(auth("42", USER_HASH)));
    assert_eq!(
        cookie(COOKIE_PLAIN, KEYS, TS + 5),
        Ok(json!({"_auth_user_id": "7"}))
    );
    let cart = cookie(COOKIE_CART, KEYS, TS).unwrap();
    assert_eq!(cart["_auth_user_id"], "42");
    assert_eq!(cart["cart"].as_array().map(Vec::len), Some(60));
    assert_eq!(cart["cart"][59], "item-59");
}

#[test]
fn fallback_keys_in_any_position() {
    assert_eq!(cookie(COOKIE_OLD_KEY, KEYS, TS), Ok(auth("42", USER_HASH)));
    assert_eq!(
        cookie(COOKIE_OLD_KEY, &[OLD_KEY], TS),
        Ok(auth("42", USER_HASH))
    );
    assert_eq!(cookie(COOKIE_OLD_KEY, &[KEY], TS), Err(BadSignature));
    // An empty key is skipped, never used as an HMAC key.
    assert_eq!(cookie(COOKIE, &[b"", KEY], TS), Ok(auth("42", USER_HASH)));
    assert_eq!(cookie(COOKIE, &[b""], TS), Err(BadSignature));
    assert_eq!(cookie(COOKIE, &[], TS), Err(BadSignature));
}

#[test]
fn max_age_as_django() {
    let limit = TS + DEFAULT_SESSION_COOKIE_AGE;
    assert!(cookie(COOKIE, KEYS, limit).is_ok());
    assert_eq!(cookie(COOKIE, KEYS, limit + 1), Err(Expired));
    assert_eq!(cookie(COOKIE, &[b"wrong"], limit + 1), Err(BadSignature));
    // Django has no lower bound, and no check at all without max_age.
    assert!(cookie(COOKIE, KEYS, 0).is_ok());
    assert!(loads(COOKIE, KEYS, SIGNED_COOKIES_SALT, None, u64::MAX).is_ok());
    assert_eq!(
        loads(COOKIE, KEYS, SIGNED_COOKIES_SALT, Some(0), TS + 1),
        Err(Expired)
    );
}

#[test]
fn salts_keep_values_apart() {
    assert_eq!(
        decode_session_data(COOKIE, KEYS, DB_SESSION_CLASS),
        Err(BadSignature)
    );
    assert_eq!(cookie(DB_SMALL, KEYS, TS), Err(BadSignature));
    assert_eq!(
        decode_session_data(DB, KEYS, "CustomStore"),
        Err(BadSignature)
    );
}

#[test]
fn db_session_data() {
    let mut expected = auth("42", USER_HASH);
    expected["_session_expiry"] = json!(3600);
    expected["name"] = json!("Zoë ✓");
    assert_eq!(
        decode_session_data(DB, KEYS, DB_SESSION_CLASS),
        Ok(expected)
    );
    assert_eq!(
        decode_session_data(DB_SMALL, KEYS, DB_SESSION_CLASS),
        Ok(json!({"_auth_user_id": "7"}))
    );
    assert_eq!(
        decode_session_data(DB, &[OLD_KEY], DB_SESSION_CLASS),
        Err(BadSignature)
    );
}

#[test]
fn sha1_signatures_refused_as_django_4_and_later() {
    assert_eq!(cookie(SHA1_COOKIE, KEYS, TS), Err(BadSignature));
    // The vector is sound: Django 3.2's sha1 signature over it checks out.
    let (value, signature) = SHA1_COOKIE.rsplit_once(':').unwrap();
    let derived = Sha1::new()
        .chain_update(format!("{SIGNED_COOKIES_SALT}signer"))
        .chain_update(KEY)
        .finalize();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    assert!(hmac_matches::<Hmac<Sha1>>(
        &derived,
        &[value.as_bytes()],
        &signature
    ));
}

#[test]
fn legacy_session_data_only_on_request() {
    assert_eq!(
        decode_session_data(LEGACY, KEYS, DB_SESSION_CLASS),
        Err(Malformed)
    );
    let expected = auth("42", LEGACY_USER_HASH);
    assert_eq!(
        decode_legacy_session_data(LEGACY, KEYS, DB_SESSION_CLASS),
        Ok(expected.clone())
    );
    assert_eq!(
        decode_legacy_session_data(LEGACY, &[OLD_KEY, KEY], DB_SESSION_CLASS),
        Ok(expected)
    );
    assert_eq!(
        decode_legacy_session_data(LEGACY, &[OLD_KEY], DB_SESSION_CLASS),
        Err(BadSignature)
    );
    assert_eq!(
        decode_legacy_session_data(LEGACY, KEYS, "OtherStore"),
        Err(BadSignature)
    );
    // The hash in uppercase never matched Django's string comparison.
    let decoded = STANDARD.decode(LEGACY).unwrap();
    let upper: Vec<u8> = decoded[..40].to_ascii_uppercase();
    let forged = STANDARD.encode([&upper[..], &decoded[40..]].concat());
    assert_eq!(
        decode_legacy_session_data(&forged, KEYS, DB_SESSION_CLASS),
        Err(BadSignature)
    );
    assert_eq!(
        decode_legacy_session_data(DB, KEYS, DB_SESSION_CLASS),
        Err(Malformed)
    );
}

#[test]
fn bad_payloads_after_a_good_signature() {
    assert!(matches!(cookie(NOT_BASE64, KEYS, TS), Err(Data(_))));
    assert!(matches!(cookie(NOT_JSON, KEYS, TS), Err(Data(_))));
    assert!(matches!(cookie(BOMB, KEYS, TS), Err(Data(_))));
    let big = cookie(BIG, KEYS, TS).unwrap();
    assert_eq!(big["x"].as_str().map(str::len), Some(200_000));
}

#[test]
fn tampering_is_a_bad_signature() {
    for (at, _) in COOKIE.char_indices() {
        let mut bytes = COOKIE.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let token = String::from_utf8(bytes).unwrap();
        let result = cookie(&token, KEYS, TS);
        assert!(
            matches!(result, Err(BadSignature | Malformed)),
            "{at}: {result:?}"
        );
    }
}

#[test]
fn truncated_at_every_length() {
    for token in [COOKIE, COOKIE_CART, DB] {
        for end in 0..token.len() {
            assert!(cookie(&token[..end], KEYS, TS).is_err());
            assert!(decode_session_data(&token[..end], KEYS, DB_SESSION_CLASS).is_err());
            assert!(decode_legacy_session_data(&token[..end], KEYS, DB_SESSION_CLASS).is_err());
        }
    }
    for end in 0..LEGACY.len() {
        assert!(decode_legacy_session_data(&LEGACY[..end], KEYS, DB_SESSION_CLASS).is_err());
    }
}

#[test]
fn oversized_and_garbage_input() {
    let garbage: String = (0..100_000u32)
        .map(|i| char::from(b"A:._-z9"[(i.wrapping_mul(2_654_435_761) >> 29) as usize % 7]))
        .collect();
    assert_eq!(cookie(&garbage, KEYS, TS), Err(Malformed));
    assert!(decode_session_data(&garbage, KEYS, DB_SESSION_CLASS).is_err());
    assert!(decode_legacy_session_data(&garbage, KEYS, DB_SESSION_CLASS).is_err());
    let long = format!("{}{COOKIE}", "A".repeat(MAX_TOKEN));
    assert_eq!(cookie(&long, KEYS, TS), Err(Malformed));
    let huge = "A".repeat(MAX_SESSION_DATA + 1);
    assert_eq!(
        decode_session_data(&huge, KEYS, DB_SESSION_CLASS),
        Err(Malformed)
    );
    for odd in ["", ":", "::", ":::", "a:b:c", "é:ü:ß", ".:0:", "\0:\0:\0"] {
        assert!(cookie(odd, KEYS, TS).is_err(), "{odd:?}");
    }
}

#[test]
fn base62_as_django() {
    assert_eq!(b62_decode("1xZYJN"), Some(TS as i64));
    assert_eq!(b62_decode("0"), Some(0));
    assert_eq!(b62_decode("-z"), Some(-61));
    // Python's b62_decode("-") is 0: the loop over no digits.
    assert_eq!(b62_decode("-"), Some(0));
    assert_eq!(b62_decode(""), None);
    assert_eq!(b62_decode("1x+"), None);
    assert_eq!(b62_decode("zzzzzzzzzzzzzzzzzzzz"), None);
}

#[test]
fn inflate_refuses_truncated_and_corrupt_streams() {
    let (_, body) = BIG.split_once('.').unwrap();
    let compressed = URL_SAFE_NO_PAD
        .decode(body.split(':').next().unwrap())
        .unwrap();
    assert_eq!(inflate(&compressed).map(|out| out.len()), Ok(200_008));
    for end in 0..compressed.len() {
        assert!(inflate(&compressed[..end]).is_err(), "{end}");
    }
    let mut bad_check = compressed.clone();
    *bad_check.last_mut().unwrap() ^= 1;
    assert!(inflate(&bad_check).is_err());
    // Python ignores bytes after the end of the stream.
    let trailing = [&compressed[..], b"junk"].concat();
    assert!(inflate(&trailing).is_ok());
}
