//! Vectors made by Flask 3.1.3 / itsdangerous 2.2.0 / Flask-Login 0.6.3 (PyPI, Python 3.11):
//! `app.session_interface.get_signing_serializer(app).dumps(...)` inside a request context
//! (so through the app's JSON provider, as save_session does), each read back by Flask
//! before being pasted. All were signed at TS.

use serde_json::json;

use super::*;

const CURRENT: &[u8] = b"flask-current-secret-key-7c1e";
const OLDER: &[u8] = b"flask-older-key-0001";
const OLDEST: &[u8] = b"flask-oldest-key-0000";
/// SECRET_KEY, then SECRET_KEY_FALLBACKS newest first.
const KEYS: &[&[u8]] = &[CURRENT, OLDER, OLDEST];
const TS: u64 = 1_796_410_302;
const LOGIN_ID: &str = "1770fa345cf5e73e7fda237adffe27bab2ff5c0bae94185591b6da0fe0532b5d877ffb2df050b3d3e282d3e87de9177d614da8017b5c57e770ef723891dee6d2";

/// flask_login.login_user(User("42")) in a request, then dumps(dict(session)): `_fresh`, `_id`, `_user_id`.
const LOGIN: &str = ".eJwljjEOwzAIAP_C3AGDCXY-ExkDatekmar-vZa63Hh3HzjyjOsJ-_u84wHHy2GHooo5uMpMCeXQ9EGswzOD1IZRpky0Eb2WJtKLbT4wA4XJxJtqppEnCho7BzVabOrRl9u3Un00LGoyRWPVIpW49eIRmxOskfuK839TCb4_cwIwnw.axMLvg.vUfHuZRvFH5un6nYY5f-UAIn5n0";
/// dumps(dict(_user_id="42", _fresh=True)).
const PLAIN: &str = "eyJfZnJlc2giOnRydWUsIl91c2VyX2lkIjoiNDIifQ.axMLvg.ys7VNvYiuk6pblSnkOGx_xj789o";
/// Every tag: tuple (nested, with bytes), bytes, UUID, datetime, Markup, a dict escaped by TagDict, non-ASCII text. Payload: {"_fresh":true,"_user_id":"42","esc":{" di":{" t__":[1,2]}},"html":{" m":"<b>hi</b>"},"name":"Zo\u00eb \u2713","nested":[{" di":{" u__":"not-a-uuid-just-a-key"}},{"a":{" t":[true,null]}}],"pair":{" t":[1,"two",{" t":[3,{" b":"AP8="}]}]},"raw":{" b":"AAFiaW5hcnn+"},"uid":{" u":"12345678123456781234567812345678"},"when":{" d":"Fri, 04 Dec 2026 18:00:05 GMT"}}
const TAGGED: &str = ".eJx1UMFqwzAM_RWjax3mOEkbTFcojO402GEwWBuCk3jEW-IMxyaMkH-fnI71NHyQ9CS99-QZynerxhaEs15RKP2obKkbEJByoKDGGsQMpNFrcGUJ4hxTXiwLhdb13Qr3OL6vDq3e31UHwI6RvULsbbh4xlRFLp7v4gT5jBqdQvbzjdMHTjCDi2TkvW6iDz-G_FN9A6rMIK_SuLR6NL7rUL6g8CW1_evFFNw0AP0tk5BUSHx8zu9hKfBRsHJa51f8eNLyNWtrYzbBsg9HBzvYi3mSZttd_l8M81OrzPVrcOFkNSUsJQ-qJpzxLYlzwZhgGXl8esErfgBX1mZi.axMLvg._rGPXbJ1Y2Fy-O9S5I-UbEAMWv0";
/// `_user_id` "42", `_fresh` false, `cart`: 80 items; zlib-compressed.
const COMPRESSED: &str = ".eJxF0k1KxEAUReG9vHELvn87WxEJjaaxQSdJOxL3rgh1anbI4H5Fqr5lve7b8S7L9fJxbCdZv45tX29vskiYnOT1st9leZbbfft8ePz78B86wkb4iBiRI2pEj3gacWZwTrOtjCvryryyrwCKoBCKYRg2z49hGIZhGIZhGIZhGI7hGD5_EoZjOIZjOIZjOEZgBEZgxLwJjMAIjMAIjMBIjMRIjMTIed0YiZEYiZEYhVEYhVEYhVHzTWEURmEURmM0RmM0RmM0Rs-Hi9EYfZaXn1-oBePX.axMLvg.e0t0FmtQBiXZWrFnkf7ANjoHMGY";
/// dumps({"x": "a" * 300000}): Flask reads it; it inflates past MAX_INFLATED.
const BOMB: &str = ".eJztwQEJAEAIBLAuF8M230IQu38P2TbpVB4AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAByS_X6BJBc.axMLvg.mbUVxgA3gmLVcMh-pD9wyq-W4m8";
/// dumps({"x": "a" * 200000}): within the bound.
const BIG: &str = ".eJztwUENADAIBDAvJwM3c0FC8D4N_NtOOpUHAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAJxlPyhWGMs.axMLvg.LhY3DPbaucBSPEeLg0gBEFQlDhk";
/// The session signer itself over base64 of `{not json`.
const NOT_JSON: &str = "e25vdCBqc29u.axMLvg.vEXQzg2-rYLy_YgcD1Ui_qeN4D0";
/// The session signer over `{" t":5}`, a tag Flask never writes (Flask: BadPayload).
const BAD_TAG: &str = "eyIgdCI6NX0.axMLvg.ZE3CWgn5msbUzeQiHSkiLrgEpWQ";
/// PLAIN's session signed when OLDER was SECRET_KEY.
const FALLBACK: &str =
    "eyJfZnJlc2giOnRydWUsIl91c2VyX2lkIjoiNDIifQ.axMLvg.a58QYzGZ3pHCtRHgs4PkQLaFZi8";
/// dumps({"_user_id": "9"}) signed when OLDEST was SECRET_KEY.
const FALLBACK_OLDEST: &str = "eyJfdXNlcl9pZCI6IjkifQ.axMLvg.ZHu7rOCbkm-6PZoKJIeOZCdnPRw";

fn plain(user: &str) -> Value {
    json!({"_user_id": user, "_fresh": true})
}

#[test]
fn login_and_plain_sessions() {
    assert_eq!(
        loads(LOGIN, KEYS, DEFAULT_MAX_AGE, TS),
        Ok(json!({"_fresh": true, "_id": LOGIN_ID, "_user_id": "42"}))
    );
    assert_eq!(loads(PLAIN, KEYS, DEFAULT_MAX_AGE, TS), Ok(plain("42")));
    assert_eq!(
        loads(PLAIN, &[CURRENT], DEFAULT_MAX_AGE, TS),
        Ok(plain("42"))
    );
}

#[test]
fn tags_become_plain_json() {
    assert_eq!(
        loads(TAGGED, KEYS, DEFAULT_MAX_AGE, TS),
        Ok(json!({
            "_fresh": true,
            "_user_id": "42",
            "esc": {" t": [1, 2]},
            "html": "<b>hi</b>",
            "name": "Zoë ✓",
            "nested": [{" u": "not-a-uuid-just-a-key"}, {"a": [true, null]}],
            "pair": [1, "two", [3, "AP8="]],
            "raw": "AAFiaW5hcnn+",
            "uid": "12345678-1234-5678-1234-567812345678",
            "when": "Fri, 04 Dec 2026 18:00:05 GMT",
        }))
    );
}

#[test]
fn untag_edge_cases() {
    let untagged = |text: &str| untag(serde_json::from_str(text).unwrap());
    // An escaped dict is not untagged again, and only its key loses the suffix.
    assert_eq!(
        untagged(r#"{" di":{" di__":{" t":[1]}}}"#),
        Ok(json!({" di": [1]}))
    );
    assert_eq!(untagged(r#"{" t":[]}"#), Ok(json!([])));
    assert_eq!(
        untagged(r#"{" u":"12345678-1234-5678-1234-56781234567F"}"#),
        Ok(json!("12345678-1234-5678-1234-56781234567f"))
    );
    // Two members: an object, not a tag.
    assert_eq!(
        untagged(r#"{" t":5," u":"x"}"#),
        Ok(json!({" t": 5, " u": "x"}))
    );
    for bad in [
        r#"{" t":5}"#,
        r#"{" u":"1234"}"#,
        r#"{" b":"not base64!"}"#,
        r#"{" m":1}"#,
        r#"{" di":{"a__":1,"b__":2}}"#,
        r#"[{" d":null}]"#,
    ] {
        assert!(matches!(untagged(bad), Err(Data(_))), "{bad}");
    }
}

#[test]
fn compressed_sessions_and_bounds() {
    let session = loads(COMPRESSED, KEYS, DEFAULT_MAX_AGE, TS).unwrap();
    assert_eq!(session["_user_id"], "42");
    assert_eq!(session["_fresh"], false);
    assert_eq!(session["cart"].as_array().map(Vec::len), Some(80));
    assert_eq!(session["cart"][79], "item-79");
    let big = loads(BIG, KEYS, DEFAULT_MAX_AGE, TS).unwrap();
    assert_eq!(big["x"].as_str().map(str::len), Some(200_000));
    assert!(matches!(
        loads(BOMB, KEYS, DEFAULT_MAX_AGE, TS),
        Err(Data(_))
    ));
}

#[test]
fn fallback_keys() {
    assert_eq!(loads(FALLBACK, KEYS, DEFAULT_MAX_AGE, TS), Ok(plain("42")));
    assert_eq!(
        loads(FALLBACK_OLDEST, KEYS, DEFAULT_MAX_AGE, TS),
        Ok(json!({"_user_id": "9"}))
    );
    assert_eq!(
        loads(FALLBACK, &[CURRENT], DEFAULT_MAX_AGE, TS),
        Err(BadSignature)
    );
    assert_eq!(
        loads(PLAIN, &[b"", CURRENT], DEFAULT_MAX_AGE, TS),
        Ok(plain("42"))
    );
}

#[test]
fn wrong_or_no_key() {
    assert_eq!(
        loads(PLAIN, &[b"wrong-key"], DEFAULT_MAX_AGE, TS),
        Err(BadSignature)
    );
    assert_eq!(
        loads(PLAIN, &[OLDER, OLDEST], DEFAULT_MAX_AGE, TS),
        Err(BadSignature)
    );
    assert_eq!(loads(PLAIN, &[b""], DEFAULT_MAX_AGE, TS), Err(BadSignature));
    assert_eq!(loads(PLAIN, &[], DEFAULT_MAX_AGE, TS), Err(BadSignature));
}

#[test]
fn max_age_as_itsdangerous() {
    assert!(loads(PLAIN, KEYS, DEFAULT_MAX_AGE, TS + DEFAULT_MAX_AGE).is_ok());
    assert_eq!(
        loads(PLAIN, KEYS, DEFAULT_MAX_AGE, TS + DEFAULT_MAX_AGE + 1),
        Err(Expired)
    );
    assert_eq!(loads(PLAIN, KEYS, 60, TS + 61), Err(Expired));
    assert!(loads(PLAIN, KEYS, 0, TS).is_ok());
    // A timestamp in the future is expired too (`age < 0`).
    assert_eq!(loads(PLAIN, KEYS, DEFAULT_MAX_AGE, TS - 1), Err(Expired));
    // The signature is checked first.
    assert_eq!(
        loads(PLAIN, &[OLDER], DEFAULT_MAX_AGE, TS + DEFAULT_MAX_AGE + 1),
        Err(BadSignature)
    );
}

#[test]
fn timestamp_is_big_endian_seconds() {
    let (value, _) = PLAIN.rsplit_once('.').unwrap();
    let (_, timestamp) = value.rsplit_once('.').unwrap();
    assert_eq!(timestamp, URL_SAFE_NO_PAD.encode(&TS.to_be_bytes()[4..]));
}

#[test]
fn bad_payloads_after_a_good_signature() {
    assert!(matches!(
        loads(NOT_JSON, KEYS, DEFAULT_MAX_AGE, TS),
        Err(Data(_))
    ));
    assert!(matches!(
        loads(BAD_TAG, KEYS, DEFAULT_MAX_AGE, TS),
        Err(Data(_))
    ));
}

#[test]
fn tampering_is_refused() {
    for token in [PLAIN, COMPRESSED] {
        for at in 0..token.len() {
            let mut bytes = token.as_bytes().to_vec();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let token = String::from_utf8(bytes).unwrap();
            let result = loads(&token, KEYS, DEFAULT_MAX_AGE, TS);
            assert!(
                matches!(result, Err(BadSignature | Malformed)),
                "{at}: {result:?}"
            );
        }
    }
}

#[test]
fn truncated_at_every_length() {
    for token in [LOGIN, PLAIN, TAGGED, COMPRESSED, BOMB] {
        for end in 0..token.len() {
            assert!(loads(&token[..end], KEYS, DEFAULT_MAX_AGE, TS).is_err());
        }
    }
}

#[test]
fn oversized_and_garbage_input() {
    let garbage: String = (0..100_000u32)
        .map(|i| char::from(b"A:._-z9"[(i.wrapping_mul(2_654_435_761) >> 29) as usize % 7]))
        .collect();
    assert_eq!(loads(&garbage, KEYS, DEFAULT_MAX_AGE, TS), Err(Malformed));
    let long = format!("{}{PLAIN}", "A".repeat(MAX_COOKIE));
    assert_eq!(loads(&long, KEYS, DEFAULT_MAX_AGE, TS), Err(Malformed));
    for odd in ["", ".", "..", "...", "a.b.c", "é.ü.ß", "..AAAA", "\0.\0.\0"] {
        assert!(loads(odd, KEYS, DEFAULT_MAX_AGE, TS).is_err(), "{odd:?}");
    }
}

#[test]
fn inflate_refuses_truncated_streams() {
    let payload = COMPRESSED
        .strip_prefix('.')
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    let compressed = URL_SAFE_NO_PAD.decode(payload).unwrap();
    assert!(inflate(&compressed).is_ok());
    for end in 0..compressed.len() {
        assert!(inflate(&compressed[..end]).is_err(), "{end}");
    }
}
