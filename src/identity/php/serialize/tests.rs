//! Vectors below are the exact bytes PHP 8.2's `serialize()` printed (php-cli 8.2.36),
//! unless marked hand-made; `\0` and `\xNN` escapes stand for the raw bytes PHP wrote.

use serde_json::json;

use super::{MAX_DEPTH, PhpDataError, unserialize, unserialize_prefix};

/// `serialize(["a"=>1,"b"=>[1,2],"o"=>(object)["x"=>1]])`
const MIXED: &[u8] =
    br#"a:3:{s:1:"a";i:1;s:1:"b";a:2:{i:0;i:1;i:1;i:2;}s:1:"o";O:8:"stdClass":1:{s:1:"x";i:1;}}"#;
/// `class P { public $pub = 1; protected $prot = 2; private $priv = 3; public $arr = ["k"=>"v"]; }`
const CLASS_P: &[u8] = b"O:1:\"P\":4:{s:3:\"pub\";i:1;s:7:\"\0*\0prot\";i:2;s:7:\"\0P\0priv\";i:3;s:3:\"arr\";a:1:{s:1:\"k\";s:1:\"v\";}}";
/// `serialize("Zoë日本")`: 10 bytes for 5 characters.
const MULTIBYTE: &[u8] = b"s:10:\"Zo\xc3\xab\xe6\x97\xa5\xe6\x9c\xac\";";
/// `serialize("\xff\xfe\x00a")`
const BINARY: &[u8] = b"s:4:\"\xff\xfe\0a\";";
/// `serialize([0.1, 1.0E+25, -INF, INF, NAN, 1.0, -0.0, 1.5e-300])`
const FLOATS: &[u8] = b"a:8:{i:0;d:0.1;i:1;d:1.0E+25;i:2;d:-INF;i:3;d:INF;i:4;d:NAN;i:5;d:1;i:6;d:-0;i:7;d:1.5E-300;}";
/// `serialize(["k"=>1.0E+25, "big"=>1e308*10, "small"=>5e-324])`
const FLOAT_EDGES: &[u8] = br#"a:3:{s:1:"k";d:1.0E+25;s:3:"big";d:INF;s:5:"small";d:5.0E-324;}"#;
/// `serialize([[[1]]])`
const NESTED: &[u8] = b"a:1:{i:0;a:1:{i:0;a:1:{i:0;i:1;}}}";
/// `serialize([true, false, null])`
const SCALARS: &[u8] = b"a:3:{i:0;b:1;i:1;b:0;i:2;N;}";
/// `serialize([PHP_INT_MAX, PHP_INT_MIN, 0, -7])`
const INTS: &[u8] = b"a:4:{i:0;i:9223372036854775807;i:1;i:-9223372036854775808;i:2;i:0;i:3;i:-7;}";
/// `serialize([1=>"a", 0=>"b"])`
const OUT_OF_ORDER: &[u8] = br#"a:2:{i:1;s:1:"a";i:0;s:1:"b";}"#;
/// `serialize([0=>"a", 2=>"b"])`
const SPARSE: &[u8] = br#"a:2:{i:0;s:1:"a";i:2;s:1:"b";}"#;
/// `serialize(["10"=>"x", "01"=>"y"])`: PHP made "10" an int key, kept "01" a string.
const NUMERIC_STRING_KEYS: &[u8] = br#"a:2:{i:10;s:1:"x";s:2:"01";s:1:"y";}"#;
/// `serialize([])`
const EMPTY: &[u8] = b"a:0:{}";
/// `serialize((object)[1,2])`
const OBJECT_FROM_LIST: &[u8] = br#"O:8:"stdClass":2:{s:1:"0";i:1;s:1:"1";i:2;}"#;
/// `serialize(new ArrayObject([1]))` (its `__serialize` gives integer property keys)
const ARRAY_OBJECT: &[u8] = br#"O:11:"ArrayObject":4:{i:0;i:0;i:1;a:1:{i:0;i:1;}i:2;a:0:{}i:3;N;}"#;
/// `$a=[1]; $a[]=&$a; serialize($a)`
const RECURSIVE_REF: &[u8] = b"a:2:{i:0;i:1;i:1;a:2:{i:0;i:1;i:1;R:3;}}";
/// `$o=new stdClass; serialize([$o,$o])`
const OBJECT_TWICE: &[u8] = br#"a:2:{i:0;O:8:"stdClass":0:{}i:1;r:2;}"#;
/// `enum Suit { case Hearts; } serialize(Suit::Hearts)`
const ENUM: &[u8] = br#"E:11:"Suit:Hearts";"#;
/// `class Old implements Serializable { ... serialize() returns "abc" }`
const CUSTOM: &[u8] = br#"C:3:"Old":3:{abc}"#;

const VALID: &[&[u8]] = &[
    MIXED,
    CLASS_P,
    MULTIBYTE,
    BINARY,
    FLOATS,
    FLOAT_EDGES,
    NESTED,
    SCALARS,
    INTS,
    OUT_OF_ORDER,
    SPARSE,
    NUMERIC_STRING_KEYS,
    EMPTY,
    OBJECT_FROM_LIST,
    ARRAY_OBJECT,
    br#"S:3:"a\62c";"#,
];

fn ok(data: &[u8]) -> serde_json::Value {
    unserialize(data).unwrap_or_else(|e| panic!("{e} for {}", String::from_utf8_lossy(data)))
}

fn err(data: &[u8]) -> PhpDataError {
    unserialize(data).expect_err(&String::from_utf8_lossy(data))
}

#[test]
fn scalars() {
    assert_eq!(ok(b"N;"), json!(null));
    assert_eq!(ok(b"b:1;"), json!(true));
    assert_eq!(ok(b"b:0;"), json!(false));
    assert_eq!(ok(b"i:42;"), json!(42));
    // PHP accepts these (checked with unserialize()).
    assert_eq!(ok(b"i:+5;"), json!(5));
    assert_eq!(ok(b"i:-0;"), json!(0));
    assert_eq!(ok(b"i:0005;"), json!(5));
    assert_eq!(ok(br#"s:0:"";"#), json!(""));
    assert_eq!(ok(br#"s:01:"a";"#), json!("a"));
    assert_eq!(ok(SCALARS), json!([true, false, null]));
    assert_eq!(ok(INTS), json!([i64::MAX, i64::MIN, 0, -7]));
}

#[test]
fn floats() {
    assert_eq!(
        ok(FLOATS),
        json!([0.1, 1.0e25, null, null, null, 1.0, -0.0, 1.5e-300])
    );
    assert!(ok(FLOATS)[6].as_f64().is_some_and(f64::is_sign_negative));
    assert_eq!(
        ok(FLOAT_EDGES),
        json!({"k": 1.0e25, "big": null, "small": 5e-324})
    );
    // Accepted by PHP's grammar (checked with unserialize()); 1e400 overflows to INF.
    for (data, want) in [
        (&b"d:.5;"[..], json!(0.5)),
        (b"d:5.;", json!(5.0)),
        (b"d:+1;", json!(1.0)),
        (b"d:1e5;", json!(100000.0)),
        (b"d:-1.5e-5;", json!(-1.5e-5)),
        (b"d:1E+5;", json!(100000.0)),
        (b"d:1e400;", json!(null)),
        (b"d:1e99999999999999999999999;", json!(null)),
    ] {
        assert_eq!(ok(data), want);
    }
    // Refused by PHP too, though Rust's parser would take some of them.
    for data in [
        &b"d:-NAN;"[..],
        b"d:+INF;",
        b"d:inf;",
        b"d:nan;",
        b"d:.;",
        b"d:1e;",
        b"d:1.2.3;",
        b"d:;",
        b"d:1e+;",
        b"d:--1;",
        b"d:E5;",
    ] {
        assert!(
            matches!(err(data), PhpDataError::Malformed { offset: 2, .. }),
            "{data:?}"
        );
    }
}

#[test]
fn strings_count_bytes_and_decode_lossily() {
    assert_eq!(ok(MULTIBYTE), json!("Zoë日本"));
    assert_eq!(ok(BINARY), json!("\u{fffd}\u{fffd}\0a"));
    // `S:` (escaped) strings: PHP reads `S:3:"a\62c";` as "abc".
    assert_eq!(ok(br#"S:3:"a\62c";"#), json!("abc"));
    assert_eq!(ok(br#"S:1:"\ff";"#), json!("\u{fffd}"));
    assert!(matches!(
        err(br#"S:3:"a\6Gc";"#),
        PhpDataError::Malformed { offset: 8, .. }
    ));
    // Declared length shorter or longer than the string.
    assert!(matches!(
        err(br#"s:1:"ab";"#),
        PhpDataError::Malformed { offset: 6, .. }
    ));
    assert!(matches!(
        err(br#"s:3:"ab";"#),
        PhpDataError::Malformed { offset: 8, .. }
    ));
    assert!(matches!(
        err(br#"s:+1:"a";"#),
        PhpDataError::Malformed { offset: 2, .. }
    ));
}

#[test]
fn arrays_lists_and_maps() {
    assert_eq!(ok(MIXED), json!({"a": 1, "b": [1, 2], "o": {"x": 1}}));
    assert_eq!(ok(NESTED), json!([[[1]]]));
    assert_eq!(ok(EMPTY), json!([]));
    assert_eq!(ok(OUT_OF_ORDER), json!({"1": "a", "0": "b"}));
    assert_eq!(ok(SPARSE), json!({"0": "a", "2": "b"}));
    assert_eq!(ok(NUMERIC_STRING_KEYS), json!({"10": "x", "01": "y"}));
    // Hand-made: PHP turns canonical numeric string keys into ints, so this is a list...
    assert_eq!(ok(br#"a:2:{s:1:"0";i:5;s:1:"1";i:6;}"#), json!([5, 6]));
    // ...but not "-0" (a string key in PHP), and any key type other than int/string fails.
    assert_eq!(ok(br#"a:1:{s:2:"-0";i:5;}"#), json!({"-0": 5}));
    assert_eq!(ok(br#"a:1:{S:1:"a";i:5;}"#), json!({"a": 5}));
    // A repeated key keeps the last value, as PHP does.
    assert_eq!(ok(b"a:2:{i:0;i:1;i:0;i:2;}"), json!({"0": 2}));
    for data in [
        &b"a:1:{b:1;i:1;}"[..],
        b"a:1:{d:1.5;i:1;}",
        b"a:1:{N;i:1;}",
        b"a:1:{a:0:{}i:1;}",
    ] {
        assert!(
            matches!(err(data), PhpDataError::Malformed { offset: 5, .. }),
            "{data:?}"
        );
    }
    assert!(matches!(
        err(b"a:1:{i:0;x}"),
        PhpDataError::Malformed { offset: 9, .. }
    ));
    assert!(matches!(
        err(b"a:1:{i:0;N;i:1;N;}"),
        PhpDataError::Malformed { offset: 11, .. }
    ));
}

#[test]
fn objects_keep_public_properties_only() {
    assert_eq!(ok(CLASS_P), json!({"pub": 1, "arr": {"k": "v"}}));
    assert_eq!(ok(OBJECT_FROM_LIST), json!({"0": 1, "1": 2}));
    assert_eq!(
        ok(ARRAY_OBJECT),
        json!({"0": 0, "1": [1], "2": [], "3": null})
    );
    assert_eq!(ok(br#"O:8:"stdClass":0:{}"#), json!({}));
    assert!(matches!(
        err(br#"O:8:"stdClass":1:{N;i:1;}"#),
        PhpDataError::Malformed { offset: 18, .. }
    ));
    assert!(matches!(
        err(br#"O:8:"stdClas":0:{}"#),
        PhpDataError::Malformed { offset: 13, .. }
    ));
}

#[test]
fn refusals() {
    let unsupported = |data: &[u8]| match err(data) {
        PhpDataError::Unsupported { offset, .. } => offset,
        other => panic!("{other:?}"),
    };
    assert_eq!(unsupported(RECURSIVE_REF), 34);
    assert_eq!(unsupported(OBJECT_TWICE), 32);
    assert_eq!(unsupported(ENUM), 0);
    assert_eq!(unsupported(CUSTOM), 0);
    assert_eq!(unsupported(b"r:1;"), 0);
    for data in [&b"x:1;"[..], b"o:1:\"a\":0:{}", b";", b" N;", b"n;"] {
        assert!(
            matches!(err(data), PhpDataError::Malformed { offset: 0, .. }),
            "{data:?}"
        );
    }
    assert!(matches!(
        err(b"b:2;"),
        PhpDataError::Malformed { offset: 2, .. }
    ));
    assert!(matches!(
        err(b"b:01;"),
        PhpDataError::Malformed { offset: 3, .. }
    ));
    assert!(matches!(
        err(b"i:;"),
        PhpDataError::Malformed { offset: 2, .. }
    ));
    assert!(matches!(err(b""), PhpDataError::Truncated { offset: 0 }));
}

#[test]
fn integers_out_of_range_are_refused_not_clamped() {
    // PHP clamps these with a warning; a clamped user id would be a different user.
    let out_of_range = PhpDataError::IntegerOutOfRange { offset: 2 };
    assert_eq!(err(b"i:9223372036854775808;"), out_of_range);
    assert_eq!(err(b"i:-9223372036854775809;"), out_of_range);
    assert_eq!(err(b"i:99999999999999999999999999999;"), out_of_range);
}

#[test]
fn trailing_bytes_and_prefix() {
    assert_eq!(err(b"N;junk"), PhpDataError::TrailingData { offset: 2 });
    assert_eq!(
        err(b"a:1:{i:0;i:1;};"),
        PhpDataError::TrailingData { offset: 14 }
    );
    assert_eq!(unserialize_prefix(b"i:7;name|N;"), Ok((json!(7), 4)));
    assert_eq!(unserialize_prefix(MIXED), Ok((ok(MIXED), MIXED.len())));
}

#[test]
fn every_truncation_is_an_error() {
    for data in VALID
        .iter()
        .chain([&RECURSIVE_REF, &OBJECT_TWICE, &ENUM, &CUSTOM])
    {
        for cut in 0..data.len() {
            let prefix = data.get(..cut).unwrap_or_default();
            assert!(unserialize(prefix).is_err(), "{cut} of {data:?}");
            assert!(unserialize_prefix(prefix).is_err(), "{cut} of {data:?}");
        }
    }
}

#[test]
fn mutations_never_panic() {
    // A cheap fuzz: every byte of every vector replaced by each byte that matters to the grammar.
    for data in VALID.iter().chain([&RECURSIVE_REF, &OBJECT_TWICE]) {
        for at in 0..data.len() {
            for byte in *b"0129:;{}\"\\-+.eNaOsSirR\0\xff" {
                let mut mutated = data.to_vec();
                if let Some(slot) = mutated.get_mut(at) {
                    *slot = byte;
                }
                let _ = unserialize(&mutated);
            }
        }
    }
}

#[test]
fn absurd_sizes_fail_before_allocating() {
    for data in [
        &b"a:999999999:{"[..],
        b"s:999999999:\"",
        b"S:999999999:\"",
        b"O:999999999:\"",
        b"O:8:\"stdClass\":999999999:{",
        b"a:18446744073709551615:{",
        b"a:99999999999999999999999999:{",
        b"a:2:{i:0;N;}",
    ] {
        assert!(
            matches!(err(data), PhpDataError::Overrun { .. }),
            "{data:?}"
        );
    }
    assert_eq!(
        err(b"a:1:{i:0;a:999999999:{}}"),
        PhpDataError::Overrun { offset: 11 }
    );
}

fn nested(depth: usize, object_at: Option<usize>) -> Vec<u8> {
    let mut data = Vec::new();
    for level in 0..depth {
        if Some(level) == object_at {
            data.extend_from_slice(br#"O:8:"stdClass":1:{s:1:"x";"#);
        } else {
            data.extend_from_slice(b"a:1:{i:0;");
        }
    }
    data.extend_from_slice(b"N;");
    data.extend(std::iter::repeat_n(b'}', depth));
    data
}

#[test]
fn depth_is_bounded() {
    assert_eq!(MAX_DEPTH, 64);
    assert!(unserialize(&nested(64, None)).is_ok());
    assert!(unserialize(&nested(64, Some(63))).is_ok());
    assert_eq!(
        unserialize(&nested(65, None)),
        Err(PhpDataError::TooDeep { offset: 64 * 9 })
    );
    assert!(matches!(
        unserialize(&nested(65, Some(10))),
        Err(PhpDataError::TooDeep { .. })
    ));
    // Far past the limit: refused without recursing that deep.
    assert!(matches!(
        unserialize(&nested(100_000, None)),
        Err(PhpDataError::TooDeep { .. })
    ));
}

#[test]
fn messages_carry_offsets_not_content() {
    let cases: [&[u8]; 6] = [
        br#"s:6:"secret"#,
        br#"a:1:{s:6:"secret";R:1;}"#,
        br#"O:6:"secret":1:{i:0;N;}junk"#,
        br#"a:1:{s:6:"secret";secret}"#,
        br#"d:secret;"#,
        br#"S:6:"secre\tt";"#,
    ];
    for data in cases {
        let message = err(data).to_string();
        assert!(
            !message.contains("secret") && !message.contains("junk"),
            "{message}"
        );
        assert!(message.contains("byte "), "{message}");
    }
    assert_eq!(
        err(b"a:1:{i:0;r:1;}").to_string(),
        "PHP data at byte 9: reference (r:/R:) not supported"
    );
}

#[test]
fn shifted_moves_offsets() {
    assert_eq!(
        PhpDataError::Truncated { offset: 3 }.shifted(10),
        PhpDataError::Truncated { offset: 13 }
    );
}
