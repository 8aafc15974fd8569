//! PHP native session data, as `session.serialize_handler` writes it into files, Redis,
//! Memcached or a database row.
//!
//! `php_serialize` stores `serialize($_SESSION)`; `php` (PHP's default) stores each
//! top-level variable as `name|<serialized value>`, back to back. Both decode to a JSON
//! object of the session variables.

use serde_json::{Map, Value};

use super::serialize::{PhpDataError, unserialize, unserialize_prefix};

/// PHP's `session.serialize_handler` (the rarely used `php_binary` is not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SerializeHandler {
    /// `php`, the default: `name|value` entries.
    Php,
    /// `php_serialize`: one serialized array.
    PhpSerialize,
}

/// Decodes a session's stored data into a JSON object of its variables. Empty data is an
/// empty session, as in PHP.
pub(crate) fn decode_session(
    data: &[u8],
    handler: SerializeHandler,
) -> Result<Value, PhpDataError> {
    let vars = match handler {
        SerializeHandler::Php => decode_php(data)?,
        SerializeHandler::PhpSerialize => decode_php_serialize(data)?,
    };
    Ok(Value::Object(vars))
}

/// Mirrors `PS_SERIALIZER_DECODE_FUNC(php)` in ext/session/session.c (PHP 7+): a name runs
/// to the first `|`, then exactly one serialized value follows. PHP 7+ gives `!` no special
/// meaning (the old "undefined variable" marker is gone), so `!x|i:1;` is the variable `!x`,
/// and an old-style `!x|` with no value fails like it does in PHP.
fn decode_php(data: &[u8]) -> Result<Map<String, Value>, PhpDataError> {
    let mut vars = Map::new();
    let mut pos = 0;
    while let Some(rest) = data.get(pos..).filter(|rest| !rest.is_empty()) {
        let mut parts = rest.splitn(2, |&b| b == b'|');
        let name = parts.next().unwrap_or_default();
        // No `|` left: PHP rejects the whole data.
        let value_data = parts
            .next()
            .ok_or(PhpDataError::Truncated { offset: data.len() })?;
        let value_start = pos + name.len() + 1;
        let (value, used) = unserialize_prefix(value_data).map_err(|e| e.shifted(value_start))?;
        // A repeated name keeps its last value, as PHP's decoder does.
        vars.insert(String::from_utf8_lossy(name).into_owned(), value);
        pos = value_start + used;
    }
    Ok(vars)
}

/// `serialize($_SESSION)`: must be an array. PHP's encoder keeps integer keys here (the `php`
/// handler skips them), so they stay, as object keys; a list-shaped array becomes
/// `{"0": .., "1": ..}` since the session is always an object.
fn decode_php_serialize(data: &[u8]) -> Result<Map<String, Value>, PhpDataError> {
    if data.is_empty() {
        return Ok(Map::new());
    }
    if data.first() != Some(&b'a') {
        return Err(PhpDataError::Malformed {
            offset: 0,
            expected: "an array",
        });
    }
    match unserialize(data)? {
        Value::Object(vars) => Ok(vars),
        Value::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect()),
        // Unreachable: data starting with `a` is an array or an error.
        _ => Err(PhpDataError::Malformed {
            offset: 0,
            expected: "an array",
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Vectors are session files PHP 8.2 wrote (`session_start()` with
    //! `session.save_path=/tmp/phpsess_test` and the handler under test), unless marked.

    use serde_json::json;

    use super::SerializeHandler::{Php, PhpSerialize};
    use super::*;

    /// `$_SESSION["user_id"]=42; $_SESSION["name"]="Zoë"; $_SESSION["roles"]=["admin"];`
    const PHP_FILE: &[u8] = b"user_id|i:42;name|s:4:\"Zo\xc3\xab\";roles|a:1:{i:0;s:5:\"admin\";}";
    const PHP_SERIALIZE_FILE: &[u8] = b"a:3:{s:7:\"user_id\";i:42;s:4:\"name\";s:4:\"Zo\xc3\xab\";s:5:\"roles\";a:1:{i:0;s:5:\"admin\";}}";
    /// `$_SESSION["!x"]=1; $_SESSION[5]="five"; $_SESSION["o"]=(object)["a"=>null];
    /// $_SESSION["f"]=0.5; $_SESSION[""]=true;` (the `php` handler skipped key 5 with a notice)
    const PHP_ODD: &[u8] = br#"!x|i:1;o|O:8:"stdClass":1:{s:1:"a";N;}f|d:0.5;|b:1;"#;
    const PHP_SERIALIZE_ODD: &[u8] = br#"a:5:{s:2:"!x";i:1;i:5;s:4:"five";s:1:"o";O:8:"stdClass":1:{s:1:"a";N;}s:1:"f";d:0.5;s:0:"";b:1;}"#;

    fn ok(data: &[u8], handler: SerializeHandler) -> Value {
        decode_session(data, handler).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn php_handler() {
        assert_eq!(
            ok(PHP_FILE, Php),
            json!({"user_id": 42, "name": "Zoë", "roles": ["admin"]})
        );
        assert_eq!(
            ok(PHP_ODD, Php),
            json!({"!x": 1, "o": {"a": null}, "f": 0.5, "": true})
        );
        // Hand-made, checked with PHP's session_decode(): same result there.
        let data = br#"user_id|i:42;name|s:5:"Alice";flags|a:0:{}a|i:1;a|i:2;"#;
        assert_eq!(
            ok(data, Php),
            json!({"user_id": 42, "name": "Alice", "flags": [], "a": 2})
        );
        assert_eq!(ok(b"", Php), json!({}));
        assert_eq!(ok(b"\xffx|N;", Php), json!({"\u{fffd}x": null}));
    }

    #[test]
    fn php_serialize_handler() {
        let want = json!({"user_id": 42, "name": "Zoë", "roles": ["admin"]});
        assert_eq!(ok(PHP_SERIALIZE_FILE, PhpSerialize), want);
        let want = json!({"!x": 1, "5": "five", "o": {"a": null}, "f": 0.5, "": true});
        assert_eq!(ok(PHP_SERIALIZE_ODD, PhpSerialize), want);
        assert_eq!(ok(b"", PhpSerialize), json!({}));
        assert_eq!(ok(b"a:0:{}", PhpSerialize), json!({}));
        assert_eq!(
            ok(br#"a:2:{i:0;s:1:"a";i:1;s:1:"b";}"#, PhpSerialize),
            json!({"0": "a", "1": "b"})
        );
    }

    #[test]
    fn refusals() {
        let err = |data: &[u8], handler| decode_session(data, handler).expect_err("must fail");
        // Not an array, or not one value.
        for data in [
            &br#"s:1:"a";"#[..],
            b"N;",
            b"i:1;",
            b"user_id|i:42;",
            br#"O:8:"stdClass":0:{}"#,
        ] {
            assert_eq!(
                err(data, PhpSerialize),
                PhpDataError::Malformed {
                    offset: 0,
                    expected: "an array"
                }
            );
        }
        assert_eq!(
            err(b"a:0:{}a:0:{}", PhpSerialize),
            PhpDataError::TrailingData { offset: 6 }
        );
        // Rejected by PHP's session_decode() too: text with no `|`, an old `!x|` marker.
        assert_eq!(
            err(b"a|i:1;junk", Php),
            PhpDataError::Truncated { offset: 10 }
        );
        assert!(matches!(
            err(b"!x|a|i:2;", Php),
            PhpDataError::Malformed { offset: 4, .. }
        ));
        assert!(matches!(
            err(b"a|i:1;junk|", Php),
            PhpDataError::Truncated { offset: 11 }
        ));
        assert!(matches!(
            err(b"a|", Php),
            PhpDataError::Truncated { offset: 2 }
        ));
        // Offsets are relative to the whole session data.
        assert!(matches!(
            err(b"a|i:1;b|r:1;", Php),
            PhpDataError::Unsupported { offset: 8, .. }
        ));
        assert!(matches!(
            err(b"a|i:1;b|a:9:{}", Php),
            PhpDataError::Overrun { offset: 10 }
        ));
        let deep = [
            &b"v|"[..],
            &b"a:1:{i:0;".repeat(65),
            b"N;",
            &b"}".repeat(65),
        ]
        .concat();
        assert_eq!(
            err(&deep, Php),
            PhpDataError::TooDeep { offset: 2 + 64 * 9 }
        );
    }

    #[test]
    fn truncations_fail_or_stop_at_an_entry_boundary() {
        for cut in 1..PHP_SERIALIZE_FILE.len() {
            let prefix = PHP_SERIALIZE_FILE.get(..cut).unwrap_or_default();
            assert!(decode_session(prefix, PhpSerialize).is_err(), "{cut}");
        }
        // `user_id|i:42;` and `name|s:4:"Zoë";` end at bytes 13 and 29.
        for cut in 0..PHP_FILE.len() {
            let prefix = PHP_FILE.get(..cut).unwrap_or_default();
            let result = decode_session(prefix, Php);
            assert_eq!(
                result.is_ok(),
                [0, 13, 29].contains(&cut),
                "{cut}: {result:?}"
            );
        }
    }
}
