//! Every signed or encrypted session format the proxy reads, through the real resolvers
//! (built from config text, as `run` builds them), on:
//!
//! - arbitrary cookie values (the layout, base64, URL-decoding and signature checks);
//! - arbitrary payloads that the harness signs or encrypts with the configured secret, so
//!   the code behind the signature check (zlib, JSON, Flask's tags, Rails' envelope and
//!   Marshal, Laravel's cookie prefix, the field mapping) sees fuzzed data too.
//!
//! The secrets are those of the unit tests' vectors, so the seeds hold real cookies that
//! verify. Input: byte 0 picks the case, byte 1 its flags, the rest is the data.
//! Must never panic; express-session and Laravel cookies signed here must give back the
//! session id that was signed.
#![no_main]

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_256, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::pbkdf2;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use intercom_secure_proxy::config::{Config, ResolverConfig};
use intercom_secure_proxy::identity::{
    Diagnosis, DjangoResolver, FlaskResolver, JwtResolver, LaravelResolver, RailsResolver,
    Session, SessionResolver, express_session_id,
};
use libfuzzer_sys::fuzz_target;
use sha1::Sha1;
use sha2::{Digest, Sha256};

const JWT_KEY: &str = "test-app-session-secret-0123456789";
const RAILS_KEY: &str = "8a909d56909bae493e78dd5d58c4186bf4281d149365c1aa2c08806c5bafc87647cb42b1f173e81686dd4b551227cb51e3ae40fb28b1e7c824d5aa63308731f2";
const RAILS_COOKIE: &str = "_app_session";
const DJANGO_KEY: &str = "django-insecure-9f#k2!current-secret-key-for-tests";
const DJANGO_SALT: &str = "django.contrib.sessions.backends.signed_cookies";
const FLASK_KEY: &str = "flask-current-secret-key-7c1e";
const LARAVEL_KEY: &str = "base64:NlTv58g9lt7wm/VNSoNFWoEEwjoPczo+zbhXEQcDKAg=";
const LARAVEL_COOKIE: &str = "laravel_session";
const EXPRESS_SECRET: &[u8] = b"keyboard cat";

const BASE: &str = r#"
[upstream]
url = "http://127.0.0.1:3000"
[intercom]
app_id = "abc123de"
secret_env = "MSG"
"#;

fn session_config(section: &str) -> ResolverConfig {
    let env: HashMap<String, String> = [
        ("MSG", "messenger-secret"),
        ("JWT", JWT_KEY),
        ("RAILS", RAILS_KEY),
        ("DJANGO", DJANGO_KEY),
        ("DJANGO_OLD", "django-insecure-old-rotated-key-0001"),
        ("FLASK", FLASK_KEY),
        ("FLASK_OLD", "flask-older-key-0001, flask-oldest-key-0000"),
        ("LARAVEL", LARAVEL_KEY),
        ("LARAVEL_OLD", "base64:7J3u2pcqi4jG+7No5AeNk3Fk65C6XgR66ETd+CKWS0Q="),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::from_toml(&format!("{BASE}\n{section}"), "f.toml", &env)
        .unwrap_or_else(|e| panic!("harness config: {e}"));
    config.session.resolver
}

struct Resolvers {
    jwt: JwtResolver,
    rails: RailsResolver,
    django: DjangoResolver,
    flask: FlaskResolver,
    laravel: LaravelResolver,
}

static RESOLVERS: LazyLock<Resolvers> = LazyLock::new(|| {
    let diagnosis = || Arc::new(Diagnosis::default());
    let fields = |pointer: &str| {
        Config::from_toml(
            &format!(
                "{BASE}\n[session]\nresolver = \"jwt\"\n[session.fields]\nuser_id = \"{pointer}\"\nemail = \"/email\"\nname = \"/name\"\n[session.jwt]\nalgorithms = [\"HS256\"]\nkey_env = \"MSG\"\n"
            ),
            "f.toml",
            &HashMap::from([("MSG".to_string(), "m".to_string())]),
        )
        .unwrap_or_else(|e| panic!("harness config: {e}"))
        .session
        .fields
    };
    let ResolverConfig::Jwt(jwt) = session_config(
        "[session]\nresolver = \"jwt\"\n[session.fields]\nuser_id = \"/sub\"\n[session.jwt]\nalgorithms = [\"HS256\", \"HS512\"]\nkey_env = \"JWT\"\n",
    ) else {
        unreachable!()
    };
    let ResolverConfig::Rails(rails) = session_config(&format!(
        "[session]\ncookie = \"{RAILS_COOKIE}\"\nresolver = \"rails\"\n[session.fields]\nuser_id = \"/session_id\"\n[session.rails]\nsecret_key_base_env = \"RAILS\"\ndigest = \"auto\"\n"
    )) else {
        unreachable!()
    };
    let ResolverConfig::Django(django) = session_config(
        "[session]\nresolver = \"django\"\n[session.fields]\nuser_id = \"/_auth_user_id\"\n[session.django]\nbackend = \"signed_cookies\"\nsecret_key_env = \"DJANGO\"\nfallback_keys_env = \"DJANGO_OLD\"\n",
    ) else {
        unreachable!()
    };
    let ResolverConfig::Flask(flask) = session_config(
        "[session]\nresolver = \"flask\"\n[session.fields]\nuser_id = \"/_user_id\"\n[session.flask]\nsecret_key_env = \"FLASK\"\nfallback_keys_env = \"FLASK_OLD\"\n",
    ) else {
        unreachable!()
    };
    let ResolverConfig::Laravel(laravel) = session_config(&format!(
        "[session]\ncookie = \"{LARAVEL_COOKIE}\"\nresolver = \"laravel\"\n[session.fields]\nuser_id = \"/login_web\"\n[session.laravel]\napp_key_env = \"LARAVEL\"\nprevious_keys_env = \"LARAVEL_OLD\"\ndriver = \"file\"\npath = \"/nonexistent/fuzz/sessions\"\n"
    )) else {
        unreachable!()
    };
    let timeout = std::time::Duration::from_secs(1);
    Resolvers {
        jwt: JwtResolver::new(&jwt, fields("/sub"), std::time::Duration::ZERO, diagnosis()),
        rails: RailsResolver::new(&rails, RAILS_COOKIE, fields("/session_id"), diagnosis()),
        django: DjangoResolver::new(&django, fields("/_auth_user_id"), timeout, diagnosis())
            .expect("django resolver"),
        flask: FlaskResolver::new(&flask, fields("/_user_id"), diagnosis()),
        laravel: LaravelResolver::new(
            &laravel,
            LARAVEL_COOKIE,
            fields("/login_web"),
            timeout,
            diagnosis(),
        )
        .expect("laravel resolver"),
    }
});

static NO_HEADERS: LazyLock<HeaderMap> = LazyLock::new(HeaderMap::new);

fn resolve_in_process(resolver: &dyn SessionResolver, cookie: &str) {
    let session = Session {
        cookie,
        headers: &NO_HEADERS,
    };
    let resolution = resolver.resolve_in_process(session);
    assert!(resolution.is_some(), "an in-process resolver answered None");
    let _ = resolver.cache_key(session);
}

/// What the Laravel resolver keys its cache on: the session id, or the raw cookie.
fn laravel_key(cookie: &str) -> [u8; 32] {
    RESOLVERS.laravel.cache_key(Session {
        cookie,
        headers: &NO_HEADERS,
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("in memory");
    encoder.finish().expect("in memory")
}

/// Percent-encodes every byte but ASCII letters and digits (what Symfony and
/// express's `cookie` write, and more).
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b.is_ascii_alphanumeric() {
            true => (b as char).to_string(),
            false => format!("%{b:02X}"),
        })
        .collect()
}

fn base62(mut n: i64) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let negative = n < 0;
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 62).unsigned_abs() as usize]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII")
}

/// A JWT with the header picked by `flags` over `payload`, signed with the resolver's key.
fn jwt(flags: u8, payload: &[u8]) -> String {
    let header: &[u8] = match flags % 4 {
        0 => br#"{"alg":"HS256","typ":"JWT"}"#,
        1 => br#"{"alg":"HS512"}"#,
        2 => br#"{"alg":"none"}"#,
        _ => br#"{"alg":"HS256","kid":"x","typ":"JWT","cty":"JWT"}"#,
    };
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = match flags % 4 {
        1 => {
            let mut mac = <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(JWT_KEY.as_bytes())
                .expect("any key length");
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        2 => Vec::new(),
        _ => hmac_sha256(JWT_KEY.as_bytes(), &[input.as_bytes()]),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// `signing.dumps(payload, salt=signed_cookies, compress=…)` at now + an offset.
fn django(flags: u8, payload: &[u8]) -> String {
    let body = match flags & 1 {
        1 => format!(".{}", URL_SAFE_NO_PAD.encode(zlib(payload))),
        _ => URL_SAFE_NO_PAD.encode(payload),
    };
    // Offsets from a day ahead to about a month back (max_age is two weeks).
    let timestamp = now() + 86_400 - i64::from(flags >> 1) * 20_000;
    let value = format!("{body}:{}", base62(timestamp));
    let key = Sha256::new()
        .chain_update(format!("{DJANGO_SALT}signer").as_bytes())
        .chain_update(DJANGO_KEY.as_bytes())
        .finalize();
    let signature = hmac_sha256(&key, &[value.as_bytes()]);
    format!("{value}:{}", URL_SAFE_NO_PAD.encode(signature))
}

/// itsdangerous' URLSafeTimedSerializer as Flask configures it.
fn flask(flags: u8, payload: &[u8]) -> String {
    let body = match flags & 1 {
        1 => format!(".{}", URL_SAFE_NO_PAD.encode(zlib(payload))),
        _ => URL_SAFE_NO_PAD.encode(payload),
    };
    let timestamp = (now() + 2 - i64::from(flags >> 1) * 100_000).max(0) as u64;
    let bytes = timestamp.to_be_bytes();
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(7);
    let value = format!("{body}.{}", URL_SAFE_NO_PAD.encode(&bytes[start..]));
    let key = hmac_sha1(FLASK_KEY.as_bytes(), &[b"cookie-session"]);
    let signature = hmac_sha1(&key, &[value.as_bytes()]);
    format!("{value}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Rails' key generator: PBKDF2-HMAC-SHA256 of secret_key_base, 1000 iterations.
fn rails_key(salt: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(1000).expect("non-zero"),
        salt,
        RAILS_KEY.as_bytes(),
        &mut out,
    );
    out
}

static RAILS_GCM: LazyLock<LessSafeKey> = LazyLock::new(|| {
    let key = rails_key(b"authenticated encrypted cookie", 32);
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("AES-256 key"))
});
static RAILS_CBC: LazyLock<Vec<u8>> = LazyLock::new(|| rails_key(b"encrypted cookie", 32));
static RAILS_SIGN: LazyLock<Vec<u8>> =
    LazyLock::new(|| rails_key(b"signed encrypted cookie", 64));

/// The plaintext Rails encrypts: the value as is, or (flag bit 1) the `_rails` envelope
/// around it, with `exp` and `pur` taken from the data after the first and second newline.
fn rails_plain(flags: u8, data: &[u8]) -> Vec<u8> {
    if flags & 2 == 0 {
        return data.to_vec();
    }
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let message = parts.next().unwrap_or_default();
    let text = |part: Option<&[u8]>| match part {
        Some(bytes) => serde_json::to_string(&String::from_utf8_lossy(bytes)).expect("string"),
        None => "null".to_string(),
    };
    let (exp, pur) = (text(parts.next()), text(parts.next()));
    let pur = match flags & 4 {
        4 => format!("\"cookie.{RAILS_COOKIE}\""),
        _ => pur,
    };
    format!(
        r#"{{"_rails":{{"message":"{}","exp":{exp},"pur":{pur}}}}}"#,
        STANDARD.encode(message)
    )
    .into_bytes()
}

/// `b64(ciphertext)--b64(iv)--b64(tag)`, URL-encoded as Rails sends it.
fn rails_gcm(flags: u8, data: &[u8]) -> String {
    let mut buffer = rails_plain(flags, data);
    let iv = [flags; 12];
    let tag = RAILS_GCM
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut buffer)
        .expect("seal");
    percent(&format!(
        "{}--{}--{}",
        STANDARD.encode(&buffer),
        STANDARD.encode(iv),
        STANDARD.encode(tag.as_ref())
    ))
}

/// `b64(b64(ciphertext)--b64(iv))--hex(HMAC-SHA1)`.
fn rails_cbc(flags: u8, data: &[u8]) -> String {
    let mut buffer = rails_plain(flags, data);
    let iv = [flags; 16];
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&AES_256, &RAILS_CBC).expect("AES-256 key"),
    )
    .expect("CBC key");
    key.less_safe_encrypt(&mut buffer, EncryptionContext::Iv128(FixedLength::from(iv)))
        .expect("encrypt");
    let inner = format!("{}--{}", STANDARD.encode(&buffer), STANDARD.encode(iv));
    let signed = STANDARD.encode(inner);
    let mac = hmac_sha1(&RAILS_SIGN, &[signed.as_bytes()]);
    percent(&format!("{signed}--{}", hex(&mac)))
}

/// EncryptCookies' value for session id `sid` (aes-256-cbc, the current APP_KEY), with the
/// `hash_hmac('sha1', name.'v2', key).'|'` prefix, under `cookie_name`.
fn laravel(flags: u8, cookie_name: &str, sid: &str) -> String {
    let key = STANDARD
        .decode(LARAVEL_KEY.trim_start_matches("base64:"))
        .expect("key");
    let prefix = hex(&hmac_sha1(&key, &[cookie_name.as_bytes(), b"v2"]));
    let mut buffer = format!("{prefix}|{sid}").into_bytes();
    let iv = [flags; 16];
    let cipher =
        PaddedBlockEncryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &key).expect("key"))
            .expect("CBC key");
    cipher
        .less_safe_encrypt(&mut buffer, EncryptionContext::Iv128(FixedLength::from(iv)))
        .expect("encrypt");
    let (iv_b64, value_b64) = (STANDARD.encode(iv), STANDARD.encode(&buffer));
    let mac = hex(&hmac_sha256(&key, &[iv_b64.as_bytes(), value_b64.as_bytes()]));
    let envelope = format!(r#"{{"iv":"{iv_b64}","value":"{value_b64}","mac":"{mac}","tag":""}}"#);
    percent(&STANDARD.encode(envelope))
}

fn express(sid: &str) -> String {
    let signature = hmac_sha256(EXPRESS_SECRET, &[sid.as_bytes()]);
    percent(&format!("s:{sid}.{}", STANDARD_NO_PAD.encode(signature)))
}

fuzz_target!(|input: &[u8]| {
    let [case, flags, data @ ..] = input else {
        return;
    };
    let (case, flags) = (*case, *flags);
    let resolvers = &*RESOLVERS;
    let text = std::str::from_utf8(data).ok();
    match case % 14 {
        // Arbitrary cookie values.
        0 => {
            if let Some(cookie) = text {
                let _ = resolvers.jwt.resolve_now(cookie);
            }
        }
        1 => {
            if let Some(cookie) = text {
                resolve_in_process(&resolvers.rails, cookie);
            }
        }
        2 => {
            if let Some(cookie) = text {
                resolve_in_process(&resolvers.django, cookie);
            }
        }
        3 => {
            if let Some(cookie) = text {
                resolve_in_process(&resolvers.flask, cookie);
            }
        }
        4 => {
            if let Some(cookie) = text {
                let _ = laravel_key(cookie);
            }
        }
        5 => {
            if let Some(cookie) = text {
                let _ = express_session_id(cookie, Some(EXPRESS_SECRET));
                let _ = express_session_id(cookie, None);
            }
        }
        // Payloads signed or encrypted here.
        6 => {
            let _ = resolvers.jwt.resolve_now(&jwt(flags, data));
        }
        7 => resolve_in_process(&resolvers.django, &django(flags, data)),
        8 => resolve_in_process(&resolvers.flask, &flask(flags, data)),
        9 => resolve_in_process(&resolvers.rails, &rails_gcm(flags, data)),
        10 => resolve_in_process(&resolvers.rails, &rails_cbc(flags, data)),
        11 => {
            let Some(sid) = text else { return };
            let right_name = flags & 1 == 0;
            let name = if right_name { LARAVEL_COOKIE } else { "XSRF-TOKEN" };
            let key = laravel_key(&laravel(flags, name, sid));
            // Past 4 KiB the encrypted payload may exceed the cookie bound (16 KiB).
            if right_name && sid.len() <= 4096 {
                let expected: [u8; 32] = Sha256::new()
                    .chain_update(b"laravel session id\0")
                    .chain_update(sid.as_bytes())
                    .finalize()
                    .into();
                assert_eq!(key, expected, "a Laravel cookie for {sid:?} lost its id");
            }
        }
        12 => {
            let Some(sid) = text else { return };
            let cookie = express(sid);
            let read = express_session_id(&cookie, Some(EXPRESS_SECRET));
            if sid.is_empty() {
                assert!(read.is_err());
            } else {
                assert_eq!(read.as_deref(), Ok(sid), "{cookie}");
            }
        }
        // A Rails value that is Marshal data (`:marshal`, `:hybrid`).
        _ => {
            let mut marshal = b"\x04\x08".to_vec();
            marshal.extend_from_slice(data);
            resolve_in_process(&resolvers.rails, &rails_gcm(flags & !2, &marshal));
        }
    }
});
