//! The config reader on arbitrary text: `Config::from_toml` must never panic (errors are
//! fine), and a config it accepts must build its identity layer without panicking.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use intercom_secure_proxy::config::Config;
use intercom_secure_proxy::identity::Identity;
use libfuzzer_sys::fuzz_target;

/// The variables proxy.toml names, and a few short ones, with usable values.
static ENV: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    [
        ("INTERCOM_MESSENGER_SECRET", "messenger-secret-0123456789"),
        ("APP_SESSION_SECRET", "app-session-secret-0123456789"),
        ("APP_COOKIE_SECRET", "cookie-secret"),
        ("APP_KEY", "base64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("APP_PREVIOUS_KEYS", "base64:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,x"),
        ("DJANGO_SECRET_KEY", "django-insecure-key"),
        ("DJANGO_SECRET_KEY_FALLBACKS", "old-1, old-2"),
        ("FLASK_SECRET_KEY", "flask-key"),
        ("SECRET_KEY_BASE", "0123456789abcdef"),
        ("MSG", "m"),
        ("K", "k"),
        ("EMPTY", ""),
        (
            "PEM",
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
});

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text, "f.toml", &*ENV) else {
        return;
    };
    // What `run` does next with the session section; inside a runtime, as there.
    let _guard = RUNTIME.enter();
    let _ = Identity::from_config(&config.session);
});
