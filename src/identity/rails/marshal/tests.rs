//! Blobs from `Marshal.dump` in Ruby 3.1.2 (Debian 12), pasted as byte strings.

use serde_json::json;

use super::*;

/// (what, Marshal.dump output, the JSON it should read as)
fn plain_cases() -> Vec<(&'static str, &'static [u8], Value)> {
    vec![
        ("nil", b"\x04\x080", json!(null)),
        ("true", b"\x04\x08T", json!(true)),
        ("false", b"\x04\x08F", json!(false)),
        ("0", b"\x04\x08i\x00", json!(0)),
        ("1", b"\x04\x08i\x06", json!(1)),
        ("-1", b"\x04\x08i\xfa", json!(-1)),
        ("4", b"\x04\x08i\x09", json!(4)),
        ("-4", b"\x04\x08i\xf7", json!(-4)),
        ("122", b"\x04\x08i\x7f", json!(122)),
        ("123", b"\x04\x08i\x01{", json!(123)),
        ("-123", b"\x04\x08i\x80", json!(-123)),
        ("-124", b"\x04\x08i\xff\x84", json!(-124)),
        ("255", b"\x04\x08i\x01\xff", json!(255)),
        ("256", b"\x04\x08i\x02\x00\x01", json!(256)),
        ("-256", b"\x04\x08i\xff\x00", json!(-256)),
        ("-257", b"\x04\x08i\xfe\xff\xfe", json!(-257)),
        ("65535", b"\x04\x08i\x02\xff\xff", json!(65535)),
        ("65536", b"\x04\x08i\x03\x00\x00\x01", json!(65536)),
        ("2**24", b"\x04\x08i\x04\x00\x00\x00\x01", json!(16_777_216)),
        ("2**30-1", b"\x04\x08i\x04\xff\xff\xff?", json!(1_073_741_823)),
        // Past ±2**30 Ruby writes a bignum even on 64-bit: large ids arrive this way.
        ("2**30", b"\x04\x08l+\x07\x00\x00\x00@", json!(1_073_741_824)),
        ("-2**30", b"\x04\x08i\xfc\x00\x00\x00\xc0", json!(-1_073_741_824)),
        ("-2**30-1", b"\x04\x08l-\x07\x01\x00\x00@", json!(-1_073_741_825)),
        ("2**31", b"\x04\x08l+\x07\x00\x00\x00\x80", json!(2_147_483_648u64)),
        ("2**40", b"\x04\x08l+\x08\x00\x00\x00\x00\x00\x01", json!(1u64 << 40)),
        ("2**62", b"\x04\x08l+\x09\x00\x00\x00\x00\x00\x00\x00@", json!(1u64 << 62)),
        ("2**63-1", b"\x04\x08l+\x09\xff\xff\xff\xff\xff\xff\xff\x7f", json!(i64::MAX)),
        ("2**63", b"\x04\x08l+\x09\x00\x00\x00\x00\x00\x00\x00\x80", json!(1u64 << 63)),
        ("2**64-1", b"\x04\x08l+\x09\xff\xff\xff\xff\xff\xff\xff\xff", json!(u64::MAX)),
        ("-2**63", b"\x04\x08l-\x09\x00\x00\x00\x00\x00\x00\x00\x80", json!(i64::MIN)),
        ("1.5", b"\x04\x08f\x081.5", json!(1.5)),
        ("-0.0", b"\x04\x08f\x07-0", json!(-0.0)),
        ("1e20", b"\x04\x08f\x091e20", json!(1e20)),
        ("1e-5", b"\x04\x08f\x091e-5", json!(1e-5)),
        ("0.1", b"\x04\x08f\x080.1", json!(0.1)),
        ("100.0", b"\x04\x08f\x081e2", json!(100.0)),
        ("1/3", b"\x04\x08f\x170.3333333333333333", json!(1.0 / 3.0)),
        ("12345678.9", b"\x04\x08f\x0f12345678.9", json!(12_345_678.9)),
        ("empty string", b"\x04\x08I\x22\x00\x06:\x06ET", json!("")),
        ("utf8", b"\x04\x08I\x22\x0bh\xc3\xa9llo\x06:\x06ET", json!("héllo")),
        ("us-ascii", b"\x04\x08I\x22\x0aascii\x06:\x06EF", json!("ascii")),
        // JSON holds no bytes: what is not UTF-8 is replaced, never guessed at.
        ("binary", b"\x04\x08\x22\x08\xff\x00a", json!("\u{fffd}\u{0}a")),
        (
            "shift_jis",
            b"\x04\x08I\x22\x07\x82\xa0\x06:\x0dencoding\x22\x0eShift_JIS",
            json!("\u{fffd}\u{fffd}"),
        ),
        ("symbol", b"\x04\x08:\x06a", json!("a")),
        ("symlinks", b"\x04\x08[\x09:\x06a:\x06b;\x00;\x06", json!(["a", "b", "a", "b"])),
        (
            "utf8 symbol",
            b"\x04\x08[\x07I:\x0bh\xc3\xa9llo\x06:\x06ET;\x00",
            json!(["héllo", "héllo"]),
        ),
        (
            "string link",
            b"\x04\x08[\x07I\x22\x0bshared\x06:\x06ET@\x06",
            json!(["shared", "shared"]),
        ),
        ("array link", b"\x04\x08[\x08[\x06i\x06@\x06@\x06", json!([[1], [1], [1]])),
        ("float link", b"\x04\x08[\x07f\x082.5@\x06", json!([2.5, 2.5])),
        (
            // The second string links (@2) to the first one's encoding name: the object
            // table must count an ivar's value after the string that holds it.
            "encoding name link",
            b"\x04\x08[\x08I\x22\x07\x82\xa0\x06:\x0dencoding\x22\x0eShift_JISI\x22\x07\x82\xa2\x06;\x00@\x07I\x22\x08utf\x06:\x06ET",
            json!(["\u{fffd}\u{fffd}", "\u{fffd}\u{fffd}", "utf"]),
        ),
        (
            "hash",
            b"\x04\x08{\x09I\x22\x06a\x06:\x06ETi\x06:\x06b[\x070Ti\x08I\x22\x06x\x06;\x00Tl+\x08\x00\x00\x00\x00\x00\x01F",
            json!({"a": 1, "b": [null, true], "3": "x", "1099511627776": false}),
        ),
        ("hash default", b"\x04\x08}\x06I\x22\x06k\x06:\x06ETi\x06i\x0a", json!({"k": 1})),
        (
            "nested",
            b"\x04\x08{\x06I\x22\x06x\x06:\x06ET[\x06[\x06{\x06I\x22\x06y\x06;\x00T[\x00",
            json!({"x": [[{"y": []}]]}),
        ),
        (
            "devise",
            b"\x04\x08{\x07I\x22\x19warden.user.user.key\x06:\x06ET[\x07[\x06i\x06I\x22\x0f$2a$12$abc\x06;\x00TI\x22\x0fsession_id\x06;\x00TI\x22\x08abc\x06;\x00T",
            json!({"warden.user.user.key": [[1], "$2a$12$abc"], "session_id": "abc"}),
        ),
        (
            "devise big id",
            b"\x04\x08{\x06I\x22\x19warden.user.user.key\x06:\x06ET[\x07[\x06l+\x08\x00\xf2\x05*\x01\x00I\x22\x0f$2a$12$abc\x06;\x00T",
            json!({"warden.user.user.key": [[5_000_000_000u64], "$2a$12$abc"]}),
        ),
    ]
}

/// (what, Marshal.dump output, the refusal)
fn refused_cases() -> Vec<(&'static str, &'static [u8], MarshalError)> {
    vec![
        ("Object.new", b"\x04\x08o:\x0bObject\x00", Refused('o')),
        ("Struct", b"\x04\x08S:\x0aPoint\x07:\x06xi\x06:\x06yi\x07", Refused('S')),
        ("_dump", b"\x04\x08Iu:\x0bDumper\x06x\x06:\x06ET", Refused('u')),
        ("marshal_dump", b"\x04\x08U:\x0cMDumper[\x06i\x06", Refused('U')),
        (
            "Time",
            b"\x04\x08Iu:\x09Time\x0d \x80\x11\xc0\x00\x00\x00\x00\x06:\x09zoneI\x22\x08UTC\x06:\x06EF",
            Refused('u'),
        ),
        ("class", b"\x04\x08c\x0bString", Refused('c')),
        ("module", b"\x04\x08m\x0bKernel", Refused('m')),
        ("extended", b"\x04\x08e:\x08Exto:\x0bObject\x00", Refused('e')),
        ("String subclass", b"\x04\x08IC:\x0dMyString\x22\x06x\x06:\x06ET", Refused('C')),
        ("Regexp", b"\x04\x08I/\x06a\x00\x06:\x06EF", Refused('/')),
        ("Range", b"\x04\x08o:\x0aRange\x08:\x09exclF:\x0abegini\x06:\x08endi\x07", Refused('o')),
        ("BigDecimal", b"\x04\x08u:\x0fBigDecimal\x0e18:0.15e1", Refused('u')),
        ("Date", b"\x04\x08U:\x09Date[\x0bi\x00i\x03\xe2\x84%i\x00i\x00i\x00f\x0c2299161", Refused('U')),
        ("an object inside a session", b"\x04\x08{\x06:\x06a[\x06o:\x0bObject\x00", Refused('o')),
        ("NaN", b"\x04\x08f\x08nan", Float),
        ("Infinity", b"\x04\x08f\x08inf", Float),
        ("float key", b"\x04\x08{\x06f\x081.5i\x06", Key),
        ("nil key", b"\x04\x08{\x060i\x06", Key),
        ("array key", b"\x04\x08{\x06[\x06i\x06i\x06", Key),
        ("2**64", b"\x04\x08l+\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00", Range),
        ("-2**64", b"\x04\x08l-\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00", Range),
        ("-2**63-1", b"\x04\x08l-\x09\x01\x00\x00\x00\x00\x00\x00\x80", Range),
        // a = []; a << a, and h = {}; h["self"] = h: links to a value still being read.
        ("recursive array", b"\x04\x08[\x06@\x00", Link),
        ("recursive hash", b"\x04\x08{\x06I\x22\x09self\x06:\x06ET@\x00", Link),
        ("link past the table", b"\x04\x08[\x07i\x06@\x06", Link),
        ("symlink past the table", b"\x04\x08;\x00", Link),
        ("Marshal 4.7", b"\x04\x07i\x06", MarshalError::Version),
        ("not Marshal", b"{\"a\":1}", MarshalError::Version),
        ("trailing bytes", b"\x04\x08[\x06i\x06junk", Trailing),
        ("array longer than the data", b"\x04\x08[\x04\xff\xff\xff\x7f", Length),
        ("negative length", b"\x04\x08\x22\xfa", Length),
        ("ivar name not a symbol", b"\x04\x08I\x22\x06x\x06i\x06T", IvarName),
        ("object as ivar value", b"\x04\x08I\x22\x06x\x06:\x06Eo:\x0bObject\x00", Refused('o')),
    ]
}

#[test]
fn plain_values_read_as_ruby_wrote_them() {
    for (what, data, expected) in plain_cases() {
        assert_eq!(load(data), Ok(expected), "{what}");
    }
}

#[test]
fn everything_else_is_refused() {
    for (what, data, expected) in refused_cases() {
        assert_eq!(load(data), Err(expected), "{what}");
    }
}

#[test]
fn a_devise_user_id_is_found_by_pointer() {
    let (_, data, _) = plain_cases().into_iter().find(|c| c.0 == "devise").unwrap();
    let session = load(data).unwrap();
    assert_eq!(
        session.pointer("/warden.user.user.key/0/0"),
        Some(&json!(1))
    );
}

#[test]
fn every_truncation_is_refused() {
    for (_, data, _) in plain_cases() {
        for end in 0..data.len() {
            // A dump is self-delimiting, so no proper prefix is one.
            assert!(load(&data[..end]).is_err(), "{:?}", &data[..end]);
        }
    }
    // Some refused blobs have valid prefixes ("trailing bytes"); none may panic.
    for (_, data, _) in refused_cases() {
        for end in 0..data.len() {
            let _ = load(&data[..end]);
        }
    }
}

#[test]
fn sixty_four_levels_are_read_and_sixty_five_refused() {
    let nested = |levels: usize| {
        let mut data = b"\x04\x08".to_vec();
        data.extend(std::iter::repeat_n(*b"[\x06", levels - 1).flatten());
        data.extend_from_slice(b"[\x00");
        data
    };
    let value = load(&nested(64)).unwrap();
    let pointer = "/0".repeat(63);
    assert_eq!(value.pointer(&pointer), Some(&json!([])));
    assert_eq!(load(&nested(65)), Err(TooDeep));
    // Deep enough to overflow a stack if depth were not checked while parsing.
    assert_eq!(load(&nested(100_000)), Err(TooDeep));
    let mut hashes = b"\x04\x08".to_vec();
    hashes.extend(std::iter::repeat_n(*b"{\x06i\x06", 100_000).flatten());
    assert_eq!(load(&hashes), Err(TooDeep));
}

#[test]
fn shared_values_cannot_multiply_without_bound() {
    // x = "x" * 16; 40.times { x = [x, x] }: 85 bytes, 2**40 strings once expanded.
    let mut data = b"\x04\x08".to_vec();
    data.extend(std::iter::repeat_n(*b"[\x07", 40).flatten());
    data.extend_from_slice(b"I\x22\x15xxxxxxxxxxxxxxxx\x06:\x06ET");
    for index in (1..=40u8).rev() {
        data.extend_from_slice(&[b'@', index + 5]);
    }
    assert_eq!(load(&data), Err(TooLarge));
    // Ten levels expand to 1024 strings, well inside the budget.
    let mut small = b"\x04\x08".to_vec();
    small.extend(std::iter::repeat_n(*b"[\x07", 10).flatten());
    small.extend_from_slice(b"I\x22\x06x\x06:\x06ET");
    for index in (1..=10u8).rev() {
        small.extend_from_slice(&[b'@', index + 5]);
    }
    let value = load(&small).unwrap();
    assert_eq!(value.pointer(&"/1".repeat(10)), Some(&json!("x")));
    // Symlinks share too: a 1000-byte symbol, then 2000 links to it (2 MB of text).
    let mut symbols = b"\x04\x08[\x02\xd1\x07:\x02\xe8\x03".to_vec();
    symbols.extend(std::iter::repeat_n(b'a', 1000));
    symbols.extend(std::iter::repeat_n(*b";\x00", 2000).flatten());
    assert_eq!(load(&symbols), Err(TooLarge));
}

#[test]
fn an_ivar_chain_cannot_recurse() {
    // "x" whose ivar value is a string with ivars, and so on: refused at the second `I`.
    let mut data = b"\x04\x08".to_vec();
    data.extend(std::iter::repeat_n(*b"I\x22\x06x\x06:\x06a", 10_000).flatten());
    assert_eq!(load(&data), Err(Refused('I')));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // xorshift: deterministic, and biased toward type bytes so parsing gets somewhere.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"0TFil\"f:;I[{}@+-\x00\x01\x02\x04\x06\x07\x08\xfa\xffE";
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let mut data = b"\x04\x08".to_vec();
        for _ in 0..len {
            let r = next();
            data.push(if r % 4 == 0 {
                (r >> 8) as u8
            } else {
                alphabet[(r >> 8) as usize % alphabet.len()]
            });
        }
        let _ = load(&data);
    }
}
