//! Vectors made by Laravel 8.83 itself (Debian's php-laravel-framework, php-cli 8.2):
//! `Illuminate\Encryption\Encrypter::encrypt($value, false)` for payloads, and the real
//! `EncryptCookies` middleware on a Symfony response for cookies (the value as it appears in
//! the Set-Cookie header, so `%3D`-encoded). Each was round-tripped through Laravel before
//! being pasted. IVs are random, so the script's output differs per run.

use super::*;

const APP_KEY_A: &str = "base64:NlTv58g9lt7wm/VNSoNFWoEEwjoPczo+zbhXEQcDKAg=";
const KEY_B_B64: &str = "7J3u2pcqi4jG+7No5AeNk3Fk65C6XgR66ETd+CKWS0Q=";
/// A raw (not base64:) 16-byte APP_KEY.
const K128: &str = "raw-128-bit-key!";
const K128B_B64: &str = "mRwriFl+wMEC/OWxSEvyBw==";
const SID: &str = "Xk3vQ9tT2pLmN8rS5wYbZcD4eF6gH7jK1aB0uVwx";

// {"iv":"QLOdko8jil09IsOP8dklzg==","value":"4VxlU1arnxpUjIa4/7DRPg==","mac":"f181c3e6…","tag":""}
const CBC256_A_HELLO: &str = "eyJpdiI6IlFMT2RrbzhqaWwwOUlzT1A4ZGtsemc9PSIsInZhbHVlIjoiNFZ4bFUxYXJueHBVaklhNC83RFJQZz09IiwibWFjIjoiZjE4MWMzZTYwMGVhZjE3Zjc3MzgzZTgzYzA5ZWExMTM3MmFkZDQ4MzUxZDY0NmFiZGNiZWI1OTMwYTExM2RmOCIsInRhZyI6IiJ9";
const CBC256_A_LONG: &str = "eyJpdiI6IjY5SG5xbXh0ZHd3QlZQN24vZERkT2c9PSIsInZhbHVlIjoiOUdhUnpoTkJWalVQczRESlcrMit1a2hHOE9OQ0tMdFNJV1hrWVh2cXJaY2kwUW9YTzhNNGYxMUsyYXNwQVhkRFNDVWdHTkJ0SGFJWiszcGdQemQ2eGVXVy9wR205RUNCSEhDMXlSSVd2dGFhOWRpekl4aGdnaytyODBMRCtMNXM2VWxCUXNtdGJERkx1cGNrdy81ZXRBPT0iLCJtYWMiOiIyNjA1NDg5MTM1MDA4N2FmNGU2Mzc5MGE0NWRhYTYxODFmMGE5ZDcyYTgxNjM1NTI5MjFhMDE0NzMyODVjYjFkIiwidGFnIjoiIn0=";
const CBC256_A_EMPTY: &str = "eyJpdiI6InVpYXRlL2gveTlTbUdlcGhPQ1FtbEE9PSIsInZhbHVlIjoiWTJ6SWxUYytYcmsrYW5lejNMdXkwdz09IiwibWFjIjoiMDVkMzI2NzRhMDViZTEwZDAwNzYzOTA1NzEyMzhlZDk3NDFmZGNhMTFlMjIxYzU4OTNjNGVjZDMzNTkxN2E3OCIsInRhZyI6IiJ9";
/// `encrypt('hello')`, serialize on, as EncryptedStore writes session data.
const CBC256_A_SERIALIZED: &str = "eyJpdiI6ImM2TXJjZk5WZTZpZUc2TlhzbnlyZFE9PSIsInZhbHVlIjoiYnVBZVpVWmFDbFo5UlBRY015YTc2dz09IiwibWFjIjoiOGJjYzhlY2RlMzEwZGQ5NjljN2Q2YTNmMzdlMDQwNThmZmZhYThhNzE2ZTkyMmU1M2VlNzIzMWFiNjkxMzQ1NyIsInRhZyI6IiJ9";
const CBC256_B_HELLO: &str = "eyJpdiI6InZBczg1cHoyVlhPeXYvN2lETVhiYWc9PSIsInZhbHVlIjoibllXczhobFUzaXU0a2lGcGltTDZjZz09IiwibWFjIjoiZjI0MWM3NTEyMDhjNDVhMDQyYmJjNWRjNjFlNTcyM2RmM2NlZTI3MTNhOWI5NmFjZmI1ODRkNWYwNjQ3YmFiYyIsInRhZyI6IiJ9";
const CBC128_HELLO: &str = "eyJpdiI6ImJmdE1iRGxycTBYdmxOTWMrN0xDclE9PSIsInZhbHVlIjoiZkF2MWlwOU1od1psVmhTOU10R2FvQT09IiwibWFjIjoiMTEzY2Y2NzFmOWFmZmVhZTFmNWJmMTc5YjMzYWQwNGZmMjQ4ZTlhNGE0ODFhODk0M2I1MWE3OGVjNWQ1OWE2OCIsInRhZyI6IiJ9";
// {"iv":"q2VFebiOZnTxe7R/","value":"s5cgsrM=","mac":"","tag":"Kcutu6YPxRwudOJ9MlS1ig=="}
const GCM128_HELLO: &str = "eyJpdiI6InEyVkZlYmlPWm5UeGU3Ui8iLCJ2YWx1ZSI6InM1Y2dzck09IiwibWFjIjoiIiwidGFnIjoiS2N1dHU2WVB4Und1ZE9KOU1sUzFpZz09In0=";
const GCM128_B_HELLO: &str = "eyJpdiI6Ii9DYk5mZW5pMFVwaUVYWGciLCJ2YWx1ZSI6Ii9QNGVyVVA1R0l6K3ZmOHciLCJtYWMiOiIiLCJ0YWciOiJZUnliNFJIR0dBRmF1NU5tZGozakFnPT0ifQ==";
const GCM256_A_HELLO: &str = "eyJpdiI6ImRKSzcxY2lpM2VPU015NmciLCJ2YWx1ZSI6ImQ1M2lCc1U9IiwibWFjIjoiIiwidGFnIjoibzdsbHN5bHdBUUNIRlJ6VStlV05LUT09In0=";
const GCM256_A_EMPTY: &str = "eyJpdiI6IkVFMEp4VGtpNkV5aVhnL0giLCJ2YWx1ZSI6IiIsIm1hYyI6IiIsInRhZyI6IjVHNG5xUkY3QkZnUm4rRjlxWS82UFE9PSJ9";
const GCM256_B_HELLO: &str = "eyJpdiI6IjMwcXZ1N3N6dU5qUVJvTVQiLCJ2YWx1ZSI6Ii9BLzRvSXNzcjlWK1d0WWsiLCJtYWMiOiIiLCJ0YWciOiJtVjF6ZG5LVjVObERWSm8wU3JnUFFBPT0ifQ==";

/// `laravel_session` = SID through EncryptCookies, aes-256-cbc, key A.
const COOKIE_CBC256_A: &str = "eyJpdiI6InkrWXREQUphT2FyRjFEdDNOVUxZcVE9PSIsInZhbHVlIjoiaG9ZRnM2QSt2MnFlSE9yUkhTR1VFTFI0QVdxenRiOGthZzZwZ3pmMzlZL3ZENGdpY2JNZ2RhSTFQeG1zN1YxajZTOHJDM29ZRUtVUjA1Q1FaenlUZEZrNGw5dEZmdThid2h5Yyt0Y1c5dWwzbXgyMXVEWTZtaW85aWNsRWZjMFQiLCJtYWMiOiIzMGIzYmMwNWJhZWIwNTViMmMxYjQ4Yzk4N2ZmMjAwNDRkZTk5ZGVmNDk5MDk3NjliNjc0NTQ4NTk3ZDMxMzY2IiwidGFnIjoiIn0%3D";
/// Same, key B (a previous key).
const COOKIE_CBC256_B: &str = "eyJpdiI6ImEzK3ZGNEI3b3hYRkJkUUxEb3VWZWc9PSIsInZhbHVlIjoiN1BMeStlZ1NLdGhYUTl0ems1bGNCWUtHNUxQUTF0aWdpdzFub2lMMjM5QXh3bkd4dXp5dVBEdnhTd0FEbnhRdVlVNjJGcUVFeGlOL09HbjNmVnAzR09uc0FqSEdjMTg2bDh3N3Ria2lxVUhUeDJvRkk4MWlWUmFmLzhZekVaOHoiLCJtYWMiOiJmNjJkYzRhMjhkOGQ5MmFmZjM0YjJkNzBlOGVmMDAwODFhYjRlNGJlNDAyZjkwMGJiOWRiMTIyOTAxN2I5NjU5IiwidGFnIjoiIn0%3D";
/// `XSRF-TOKEN` = "some-token-value", aes-256-cbc, key A.
const COOKIE_CBC256_A_XSRF: &str = "eyJpdiI6IjY4alRpd2pRa1dCYUFuWnVsUFZ6OUE9PSIsInZhbHVlIjoid0JrQkRVa3NNMkFwZkZ1Rkl0R3NRdXE2VnN5Wk1VMFBwQWRpWW1SaTh3Zlp5K1pjNUFjNStJWWlJdEJlRE1QQzQrem0vV1VEQ0R5ZWZZNkxHTlZRRWc9PSIsIm1hYyI6IjRkMmI1ZDI4YTU3NDE4NjNkZWJhOWU5ZDQ0M2NlMmZmNTU1NWRkNmQyMzI4ZGMxNTI3YzVhMjY3OGNmYmM2MzMiLCJ0YWciOiIifQ%3D%3D";
const COOKIE_GCM256_A: &str = "eyJpdiI6Im1pb1lhTkY0S3RuOE5wZmUiLCJ2YWx1ZSI6IktDbjFPaEpTNjFid3kxU0ZEdTluRWtEMTczeVNOZzUrK0o2VENGeVBOc01Zcm1kbUptSVdlTmJ2aDBNU2ZvbUNOQlE3MHlyUzlyYlI3VWVwWWl6THU2TWhYQTF5bjdHU3pWMDhhRmtvKzU5bCIsIm1hYyI6IiIsInRhZyI6Ilg3V2JFdDRxdi9KSDlBL0YwbzB4TWc9PSJ9";
/// `myapp_session` = SID, aes-128-gcm, key K128B.
const COOKIE_GCM128_B: &str = "eyJpdiI6IitHZHlSaUFYaWZlSVR3RFoiLCJ2YWx1ZSI6IlhjZGFrM3JqR056RTFqQWRCbWczUHJkckxZSEl1V1NpK1ZKL0hkUmhYWEN6eVFXNFNDNUVTSXRySEpTU29JSWVISUtPSWdyYkxObHFyNDE2TUpHQ0FIUEZnaHVsWmh1T2RtYnJsZnRQWFFVaiIsIm1hYyI6IiIsInRhZyI6IlgrSGlrNEQyY2R1UDlzL2txc2R6V3c9PSJ9";
const COOKIE_CBC128: &str = "eyJpdiI6IjdqNzBhVWRyYXhSdjJad0NSTXpncFE9PSIsInZhbHVlIjoidFlRdjBrWEhqUlppWVNnUnY1eSthdDgxcW9obUZ6UlkvdEZwUWs1cHp5UVYyVWVydWhzTUFFbktkd2Q1bzVXS1ZrNjgyR1B5Q1gwVkVHcllpckVUWHpRYVZQTS9YQWhPV3UxL0RlbXRRRlVFaUJ4L3ZYeVhxcGRWSnp0RFJjc08iLCJtYWMiOiIyZGE2NWI2NGI2NmFmOGEwMWE2NGQ3ZTUzYzdmZTdlMzdhNmI3MjI3ODM0MGI0NmY4ZjU5OGFjNDU3MjI0ZTQ2IiwidGFnIjoiIn0%3D";
/// Encrypted with key B but carrying key A's prefix (made by hand with Laravel's classes).
const COOKIE_B_WITH_A_PREFIX: &str = "eyJpdiI6IkRjWFNwY1VNMVF1OSs2SXAxK0hXYnc9PSIsInZhbHVlIjoibW9WSlFWQUtvMUgrc2M0dzg4OUQvUzFwamZsRlM1YUZxSWI2WTcxcThRQ1pld2FWVXkrazlUNlV2cmMwTnBkS3RhTHJ6RmlJVWpRSDVYZ1VvQTQ4cnZxSHBqUWI2eE1rMFJhTlVtbnF3UEhERmJuNVpJaU5YRlprWWVmM1VmS0EiLCJtYWMiOiI5MWJlM2YzZTA3ZTgwODBkZDg0MmU1ZmUxMmE2M2Q1OGQyOWIzNDMxZWI4Yzk4MTc5OWFjNzU2ZTg4YTM3ZTIzIiwidGFnIjoiIn0%3D";

fn key_a() -> Vec<u8> {
    parse_app_key(APP_KEY_A).unwrap()
}
fn key_b() -> Vec<u8> {
    STANDARD.decode(KEY_B_B64).unwrap()
}
fn key_128b() -> Vec<u8> {
    STANDARD.decode(K128B_B64).unwrap()
}
fn enc(cipher: Cipher, keys: Vec<Vec<u8>>) -> Encrypter {
    Encrypter::new(cipher, keys).unwrap()
}
fn cbc256() -> Encrypter {
    enc(Cipher::Aes256Cbc, vec![key_a(), key_b()])
}
fn gcm256() -> Encrypter {
    enc(Cipher::Aes256Gcm, vec![key_a(), key_b()])
}

/// Rewrite the JSON inside a payload, keeping Laravel's exact text otherwise.
fn edit_json(payload: &str, edit: impl FnOnce(String) -> String) -> String {
    let json = String::from_utf8(STANDARD.decode(payload).unwrap()).unwrap();
    STANDARD.encode(edit(json))
}

/// Change one character of a JSON field's value (the first one, or `at` further).
fn flip_field(payload: &str, field: &str, at: usize) -> String {
    edit_json(payload, |json| {
        let start = json.find(&format!("\"{field}\":\"")).unwrap() + field.len() + 4 + at;
        let mut bytes = json.into_bytes();
        bytes[start] = if bytes[start] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    })
}

#[test]
fn cipher_names_as_laravel_config() {
    assert_eq!(Cipher::parse("AES-256-CBC"), Some(Cipher::Aes256Cbc));
    assert_eq!(Cipher::parse("aes-128-cbc"), Some(Cipher::Aes128Cbc));
    assert_eq!(Cipher::parse("aes-128-GCM"), Some(Cipher::Aes128Gcm));
    assert_eq!(Cipher::parse("aes-256-gcm"), Some(Cipher::Aes256Gcm));
    for bad in [
        "",
        "aes-192-cbc",
        "aes-256-cbc ",
        "aes256cbc",
        "AES-256-CTR",
    ] {
        assert_eq!(Cipher::parse(bad), None, "{bad:?}");
    }
    assert_eq!(Cipher::Aes128Gcm.key_len(), 16);
    assert_eq!(Cipher::Aes256Cbc.key_len(), 32);
    assert_eq!(Cipher::Aes256Gcm.to_string(), "aes-256-gcm");
}

#[test]
fn app_key_parsing() {
    assert_eq!(key_a().len(), 32);
    assert_eq!(parse_app_key(K128).unwrap(), K128.as_bytes());
    assert!(parse_app_key("").is_err());
    let secret = "base64:s3cr3t!!";
    let err = parse_app_key(secret).unwrap_err();
    assert!(!err.contains("s3cr3t"), "{err}");
    // "base64:" alone decodes to nothing; the length check then names the key.
    let err = Encrypter::new(Cipher::Aes256Cbc, vec![parse_app_key("base64:").unwrap()]);
    assert!(err.unwrap_err().contains("key #0"));
}

#[test]
fn key_lengths_are_checked_per_key() {
    let err = Encrypter::new(Cipher::Aes256Cbc, vec![key_a(), K128.into()]).unwrap_err();
    assert!(err.contains("key #1") && err.contains("32 bytes"), "{err}");
    assert!(!err.contains(K128), "{err}");
    let err = Encrypter::new(Cipher::Aes128Gcm, vec![key_a()]).unwrap_err();
    assert!(err.contains("key #0") && err.contains("16 bytes"), "{err}");
    assert!(Encrypter::new(Cipher::Aes128Cbc, vec![]).is_err());
}

#[test]
fn debug_shows_no_key() {
    let text = format!("{:?}", cbc256());
    assert!(
        text.contains("redacted") && text.contains("Aes256Cbc"),
        "{text}"
    );
    assert!(
        !text.contains(&format!("{:?}", key_a())) && !text.contains("NlTv"),
        "{text}"
    );
}

#[test]
fn encrypter_is_shareable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Encrypter>();
}

#[test]
fn decrypts_all_four_ciphers() {
    let k128 = || vec![K128.as_bytes().to_vec(), key_128b()];
    let long = "The quick brown fox. ".repeat(5);
    let cases: [(Encrypter, &str, &[u8]); 8] = [
        (cbc256(), CBC256_A_HELLO, b"hello"),
        (cbc256(), CBC256_A_EMPTY, b""),
        (cbc256(), CBC256_A_LONG, long.as_bytes()),
        (cbc256(), CBC256_A_SERIALIZED, b"s:5:\"hello\";"),
        (
            enc(Cipher::Aes128Cbc, vec![K128.into()]),
            CBC128_HELLO,
            b"hello",
        ),
        (enc(Cipher::Aes128Gcm, k128()), GCM128_HELLO, b"hello"),
        (gcm256(), GCM256_A_HELLO, b"hello"),
        (gcm256(), GCM256_A_EMPTY, b""),
    ];
    for (encrypter, payload, plain) in cases {
        assert_eq!(
            encrypter.decrypt(payload).as_deref(),
            Ok(plain),
            "{payload}"
        );
    }
}

#[test]
fn previous_keys_are_tried_in_order() {
    assert_eq!(cbc256().decrypt(CBC256_B_HELLO).unwrap(), b"hello from B");
    assert_eq!(gcm256().decrypt(GCM256_B_HELLO).unwrap(), b"hello from B");
    let gcm128 = enc(Cipher::Aes128Gcm, vec![K128.into(), key_128b()]);
    assert_eq!(gcm128.decrypt(GCM128_B_HELLO).unwrap(), b"hello from B");
    // Current key alone: B's payloads are refused.
    assert_eq!(
        enc(Cipher::Aes256Cbc, vec![key_a()]).decrypt(CBC256_B_HELLO),
        Err(BadMac)
    );
    assert_eq!(
        enc(Cipher::Aes256Gcm, vec![key_a()]).decrypt(GCM256_B_HELLO),
        Err(Decrypt)
    );
    // Order does not matter for which payloads open.
    let swapped = enc(Cipher::Aes256Cbc, vec![key_b(), key_a()]);
    assert_eq!(swapped.decrypt(CBC256_A_HELLO).unwrap(), b"hello");
}

#[test]
fn wrong_key_is_bad_mac_for_cbc_and_decrypt_for_gcm() {
    let wrong = vec![vec![7u8; 32]];
    assert_eq!(
        enc(Cipher::Aes256Cbc, wrong.clone()).decrypt(CBC256_A_HELLO),
        Err(BadMac)
    );
    assert_eq!(
        enc(Cipher::Aes256Gcm, wrong).decrypt(GCM256_A_HELLO),
        Err(Decrypt)
    );
}

#[test]
fn tampering_is_caught() {
    let cbc = cbc256();
    assert_eq!(
        cbc.decrypt(&flip_field(CBC256_A_HELLO, "value", 0)),
        Err(BadMac)
    );
    assert_eq!(
        cbc.decrypt(&flip_field(CBC256_A_HELLO, "value", 5)),
        Err(BadMac)
    );
    assert_eq!(
        cbc.decrypt(&flip_field(CBC256_A_HELLO, "iv", 3)),
        Err(BadMac)
    );
    assert_eq!(
        cbc.decrypt(&flip_field(CBC256_A_HELLO, "mac", 0)),
        Err(BadMac)
    );
    // hash_equals against lowercase hex: an uppercase MAC is not Laravel's MAC.
    let upper = edit_json(CBC256_A_HELLO, |json| json.replace("f181c3e6", "F181C3E6"));
    assert_eq!(cbc.decrypt(&upper), Err(BadMac));
    let gcm = gcm256();
    assert_eq!(
        gcm.decrypt(&flip_field(GCM256_A_HELLO, "tag", 0)),
        Err(Decrypt)
    );
    assert_eq!(
        gcm.decrypt(&flip_field(GCM256_A_HELLO, "tag", 20)),
        Err(Decrypt)
    );
    assert_eq!(
        gcm.decrypt(&flip_field(GCM256_A_HELLO, "value", 0)),
        Err(Decrypt)
    );
    assert_eq!(
        gcm.decrypt(&flip_field(GCM256_A_HELLO, "iv", 0)),
        Err(Decrypt)
    );
    // GCM ignores `mac`, as Laravel does, but it must be a string.
    let with_mac = edit_json(GCM256_A_HELLO, |json| {
        json.replace("\"mac\":\"\"", "\"mac\":\"x\"")
    });
    assert_eq!(gcm.decrypt(&with_mac).unwrap(), b"hello");
}

#[test]
fn envelope_is_checked_like_laravel() {
    let cbc = cbc256();
    let gcm = gcm256();
    // ensureTagIsValid: no tag on CBC, a 16-byte tag on GCM.
    let cbc_tag = edit_json(CBC256_A_HELLO, |json| {
        json.replace("\"tag\":\"\"", "\"tag\":\"AAAA\"")
    });
    assert_eq!(cbc.decrypt(&cbc_tag), Err(Malformed));
    let no_tag = edit_json(CBC256_A_HELLO, |json| json.replace(",\"tag\":\"\"", ""));
    assert_eq!(cbc.decrypt(&no_tag).unwrap(), b"hello");
    let short_tag = edit_json(GCM256_A_HELLO, |json| {
        json.replace("o7llsylwAQCHFRzU+eWNKQ==", "o7llsylwAQCHFRzU")
    });
    assert_eq!(gcm.decrypt(&short_tag), Err(Malformed));
    let gcm_no_tag = edit_json(GCM256_A_HELLO, |json| {
        json.replace(",\"tag\":\"o7llsylwAQCHFRzU+eWNKQ==\"", "")
    });
    assert_eq!(gcm.decrypt(&gcm_no_tag), Err(Malformed));
    // The IV length belongs to the cipher: 12 for GCM, 16 for CBC.
    assert_eq!(cbc.decrypt(GCM256_A_HELLO), Err(Malformed));
    assert_eq!(gcm.decrypt(CBC256_A_HELLO), Err(Malformed));
    // Fields must be strings.
    let numeric = edit_json(CBC256_A_HELLO, |json| {
        json.replace("\"tag\":\"\"", "\"tag\":0")
    });
    assert_eq!(cbc.decrypt(&numeric), Err(Malformed));
    let no_mac = edit_json(GCM256_A_HELLO, |json| json.replace("\"mac\":\"\",", ""));
    assert_eq!(gcm.decrypt(&no_mac), Err(Malformed));
}

#[test]
fn junk_is_malformed() {
    let cbc = cbc256();
    let b64 = |text: &str| STANDARD.encode(text);
    let junk = [
        String::new(),
        "not base64!".into(),
        "é".into(),
        CBC256_A_HELLO.trim_end_matches('=').to_owned() + "=",
        format!(" {CBC256_A_HELLO}"),
        b64("null"),
        b64("[]"),
        b64("{}"),
        b64("\"hello\""),
        b64("{\"iv\":1,\"value\":2,\"mac\":3}"),
        b64("{\"iv\":\"\",\"value\":\"\",\"mac\":\"\"}"),
        b64(&"[".repeat(5000)),
        "A".repeat(MAX_PAYLOAD + 4),
    ];
    for payload in junk {
        assert_eq!(cbc.decrypt(&payload), Err(Malformed), "{payload:.40}");
        assert_eq!(gcm256().decrypt(&payload), Err(Malformed), "{payload:.40}");
    }
}

#[test]
fn size_bound_is_16_kib_of_payload() {
    let cbc = cbc256();
    let padded = |extra: usize| {
        edit_json(CBC256_A_HELLO, |json| {
            json.replace(
                "\"tag\"",
                &format!("\"pad\":\"{}\",\"tag\"", "x".repeat(extra)),
            )
        })
    };
    let fits = (0..)
        .map(padded)
        .take_while(|p| p.len() <= MAX_PAYLOAD)
        .last()
        .unwrap();
    assert_eq!(cbc.decrypt(&fits).unwrap(), b"hello");
    let over = (0..).map(padded).find(|p| p.len() > MAX_PAYLOAD).unwrap();
    assert_eq!(cbc.decrypt(&over), Err(Malformed));
}

#[test]
fn truncation_never_panics_or_passes() {
    let cases = [
        (cbc256(), CBC256_A_LONG),
        (cbc256(), CBC256_A_HELLO),
        (gcm256(), GCM256_A_HELLO),
        (gcm256(), GCM256_A_EMPTY),
    ];
    for (encrypter, payload) in cases {
        for end in 0..payload.len() {
            assert!(encrypter.decrypt(&payload[..end]).is_err(), "{end}");
            assert!(encrypter.decrypt(&payload[end..]).is_err() || end == 0);
        }
        // Truncated JSON, well-formed base64: exercises the JSON and field paths.
        let json = STANDARD.decode(payload).unwrap();
        for end in 0..json.len() {
            assert!(
                encrypter.decrypt(&STANDARD.encode(&json[..end])).is_err(),
                "{end}"
            );
        }
    }
}

#[test]
fn bit_flips_never_panic_and_never_change_the_plaintext() {
    let cases = [
        (cbc256(), CBC256_A_HELLO, &b"hello"[..]),
        (gcm256(), GCM256_A_HELLO, &b"hello"[..]),
        (
            enc(Cipher::Aes128Cbc, vec![K128.into()]),
            CBC128_HELLO,
            &b"hello"[..],
        ),
    ];
    for (encrypter, payload, plain) in cases {
        let json = STANDARD.decode(payload).unwrap();
        for i in 0..json.len() {
            for bit in 0..8 {
                let mut mutated = json.clone();
                mutated[i] ^= 1 << bit;
                // Some edits are harmless (renaming "tag" away on CBC); none may forge.
                if let Ok(got) = encrypter.decrypt(&STANDARD.encode(&mutated)) {
                    assert_eq!(got, plain, "byte {i} bit {bit}");
                }
            }
        }
    }
}

#[test]
fn session_cookies_from_encrypt_cookies() {
    let cbc = cbc256();
    assert_eq!(
        cbc.session_id_from_cookie("laravel_session", COOKIE_CBC256_A)
            .unwrap(),
        SID
    );
    // Already URL-decoded (by a proxy or a client) works too.
    let decoded = COOKIE_CBC256_A.replace("%3D", "=");
    assert_eq!(
        cbc.session_id_from_cookie("laravel_session", &decoded)
            .unwrap(),
        SID
    );
    let lower = COOKIE_CBC256_A.replace("%3D", "%3d");
    assert_eq!(
        cbc.session_id_from_cookie("laravel_session", &lower)
            .unwrap(),
        SID
    );
    // A previous key decrypts it and its own prefix is checked.
    assert_eq!(
        cbc.session_id_from_cookie("laravel_session", COOKIE_CBC256_B)
            .unwrap(),
        SID
    );
    let xsrf = cbc.session_id_from_cookie("XSRF-TOKEN", COOKIE_CBC256_A_XSRF);
    assert_eq!(xsrf.unwrap(), "some-token-value");
    let gcm = gcm256();
    assert_eq!(
        gcm.session_id_from_cookie("laravel_session", COOKIE_GCM256_A)
            .unwrap(),
        SID
    );
    let gcm128 = enc(Cipher::Aes128Gcm, vec![K128.into(), key_128b()]);
    assert_eq!(
        gcm128
            .session_id_from_cookie("myapp_session", COOKIE_GCM128_B)
            .unwrap(),
        SID
    );
    let cbc128 = enc(Cipher::Aes128Cbc, vec![K128.into()]);
    assert_eq!(
        cbc128
            .session_id_from_cookie("laravel_session", COOKIE_CBC128)
            .unwrap(),
        SID
    );
}

#[test]
fn cookie_prefix_binds_name_and_key() {
    let cbc = cbc256();
    // Another cookie's value replayed under the session cookie's name.
    assert_eq!(
        cbc.session_id_from_cookie("laravel_session", COOKIE_CBC256_A_XSRF),
        Err(BadPrefix)
    );
    assert_eq!(
        cbc.session_id_from_cookie("other_session", COOKIE_CBC256_A),
        Err(BadPrefix)
    );
    assert_eq!(
        cbc.session_id_from_cookie("Laravel_session", COOKIE_CBC256_A),
        Err(BadPrefix)
    );
    let gcm128 = enc(Cipher::Aes128Gcm, vec![K128.into(), key_128b()]);
    assert_eq!(
        gcm128.session_id_from_cookie("laravel_session", COOKIE_GCM128_B),
        Err(BadPrefix)
    );
    // No prefix at all: a plain payload.
    assert_eq!(
        cbc.session_id_from_cookie("laravel_session", CBC256_A_HELLO),
        Err(BadPrefix)
    );
    assert_eq!(
        cbc.session_id_from_cookie("laravel_session", CBC256_A_LONG),
        Err(BadPrefix)
    );
    // The prefix must be the decrypting key's (Laravel 11 accepts any configured key's).
    let b_with_a = cbc.session_id_from_cookie("laravel_session", COOKIE_B_WITH_A_PREFIX);
    assert_eq!(b_with_a, Err(BadPrefix));
}

#[test]
fn cookie_junk_and_truncation() {
    let cbc = cbc256();
    for junk in [
        "",
        "%",
        "%ZZ",
        "%E9%80",
        "a+b",
        "%2",
        "x".repeat(4 * MAX_PAYLOAD).as_str(),
    ] {
        assert_eq!(
            cbc.session_id_from_cookie("laravel_session", junk),
            Err(Malformed),
            "{junk:.20}"
        );
    }
    for cookie in [COOKIE_CBC256_A, COOKIE_GCM256_A] {
        for end in 0..cookie.len() {
            assert!(
                cbc.session_id_from_cookie("laravel_session", &cookie[..end])
                    .is_err()
            );
            assert!(
                gcm256()
                    .session_id_from_cookie("laravel_session", &cookie[..end])
                    .is_err()
            );
        }
    }
}

#[test]
fn url_decoding_is_php_urldecode() {
    assert_eq!(url_decode("a%3Db%3d%2B%2f"), b"a=b=+/");
    assert_eq!(url_decode("%zz%4%+x+"), b"%zz%4% x ");
    assert_eq!(url_decode("%"), b"%");
    assert_eq!(url_decode("%E9"), [0xe9]);
}

#[test]
fn lower_hex_only() {
    assert_eq!(lower_hex(b"00ff7a"), Some(vec![0, 255, 0x7a]));
    assert_eq!(lower_hex(b"00FF"), None);
    assert_eq!(lower_hex(b"abc"), None);
    assert_eq!(lower_hex(b"zz"), None);
}
