//! The keys of issue 17's reload and key rotation: `[server] pid_file` and `watch_config`,
//! `previous_keys_*` of `[session.jwt]` and `[session.rails]`, and
//! `previous_cookie_secrets_*` of `[session.redis]`: their defaults, and what `check` says
//! about each wrong value.

use std::collections::HashMap;

use super::*;

const BASE: &str = r#"
[upstream]
url = "http://127.0.0.1:3000"
[intercom]
app_id = "abc123de"
secret_env = "MSG"
[session.fields]
user_id = "/sub"
"#;

fn env() -> HashMap<String, String> {
    HashMap::from([
        ("MSG".to_string(), "messenger-secret".to_string()),
        ("KEY".to_string(), "app-key".to_string()),
        ("OLD_KEYS".to_string(), "older, oldest ,".to_string()),
        ("BLANK".to_string(), " , ".to_string()),
    ])
}

fn load(extra: &str) -> Result<Config, Vec<String>> {
    Config::from_toml(&format!("{BASE}\n{extra}"), "t.toml", &env())
        .map_err(|e| e.issues.iter().map(ToString::to_string).collect())
}

fn problems(extra: &str) -> Vec<String> {
    match load(extra) {
        Ok(_) => panic!("expected problems with {extra}"),
        Err(problems) => problems,
    }
}

fn has(problems: &[String], key: &str, words: &str) -> bool {
    problems
        .iter()
        .any(|p| p.starts_with(&format!("{key}: ")) && p.contains(words))
}

const JWT: &str = "[session]\nresolver = \"jwt\"\n[session.jwt]\nkey_env = \"KEY\"\n";

#[test]
fn pid_file_and_watch_config_default_to_off() {
    let c = load(JWT).unwrap();
    assert_eq!(c.server.pid_file, None);
    assert!(!c.server.watch_config);
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("isp.pid");
    let c = load(&format!(
        "[server]\npid_file = {pid:?}\nwatch_config = true\n{JWT}"
    ))
    .unwrap();
    assert_eq!(c.server.pid_file.as_deref(), Some(pid.as_path()));
    assert!(c.server.watch_config);
}

#[test]
fn unusable_pid_files_and_watch_values_are_named() {
    let p = problems(&format!(
        "[server]\npid_file = \"/no/such/dir/isp.pid\"\nwatch_config = \"yes\"\n{JWT}"
    ));
    assert!(has(&p, "server.pid_file", "/no/such/dir"), "{p:?}");
    assert!(has(&p, "server.watch_config", "true or false"), "{p:?}");
    let p = problems(&format!("[server]\npid_file = \"\"\n{JWT}"));
    assert!(has(&p, "server.pid_file", "empty"), "{p:?}");
}

#[test]
fn jwt_previous_keys_are_a_comma_list_for_hmac() {
    let c = load(&format!("{JWT}previous_keys_env = \"OLD_KEYS\"\n")).unwrap();
    let ResolverConfig::Jwt(jwt) = &c.session.resolver else {
        panic!("jwt resolver")
    };
    assert_eq!(jwt.previous_keys.len(), 2, "empty items are left out");
    assert!(load(JWT).is_ok_and(|c| matches!(
        &c.session.resolver,
        ResolverConfig::Jwt(jwt) if jwt.previous_keys.is_empty()
    )));
}

#[test]
fn jwt_previous_keys_that_cannot_work_are_named() {
    let p = problems(&format!("{JWT}previous_keys_env = \"UNSET\"\n"));
    assert!(
        has(&p, "session.jwt.previous_keys_env", "UNSET is not set"),
        "{p:?}"
    );
    let p = problems(&format!("{JWT}previous_keys_env = \"BLANK\"\n"));
    assert!(
        has(&p, "session.jwt.previous_keys_env", "holds no key"),
        "{p:?}"
    );
    let p = problems(&format!(
        "{JWT}previous_keys_env = \"OLD_KEYS\"\nprevious_keys_file = \"/x\"\n"
    ));
    assert!(
        has(&p, "session.jwt.previous_keys_env", "only one"),
        "{p:?}"
    );
    let p = problems(&format!("{JWT}previous_keys_file = \"/no/such/keys\"\n"));
    assert!(
        has(&p, "session.jwt.previous_keys_file", "cannot read"),
        "{p:?}"
    );
}

#[test]
fn jwt_previous_keys_are_pem_public_keys_for_asymmetric_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    let pem = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, key.public_key_pem()).unwrap();
        path
    };
    let current = pem("current.pem");
    let (a, b) = (pem("a.pem"), pem("b.pem"));
    let both = dir.path().join("both.pem");
    let text = format!(
        "{}\n{}",
        std::fs::read_to_string(&a).unwrap(),
        std::fs::read_to_string(&b).unwrap()
    );
    std::fs::write(&both, text).unwrap();
    let es = |previous: &std::path::Path| {
        format!(
            "[session]\nresolver = \"jwt\"\n[session.jwt]\nalgorithms = [\"ES256\"]\n\
             key_file = {current:?}\nprevious_keys_file = {previous:?}\n"
        )
    };
    let c = load(&es(&both)).unwrap();
    let ResolverConfig::Jwt(jwt) = &c.session.resolver else {
        panic!("jwt resolver")
    };
    assert_eq!(jwt.previous_keys.len(), 2);
    let junk = dir.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let p = problems(&es(&junk));
    assert!(
        has(&p, "session.jwt.previous_keys_file", "key 1 of file")
            && has(&p, "session.jwt.previous_keys_file", "not a usable key"),
        "{p:?}"
    );
    let p = problems(&es(&a).replace("ES256", "RS256"));
    assert!(has(&p, "session.jwt.key_file", "not a usable key"), "{p:?}");
}

#[test]
fn rails_and_express_previous_secrets_are_read_and_checked() {
    let c = load(
        "[session]\nresolver = \"rails\"\n[session.rails]\nsecret_key_base_env = \"KEY\"\n\
         previous_keys_env = \"OLD_KEYS\"\n",
    )
    .unwrap();
    let ResolverConfig::Rails(rails) = &c.session.resolver else {
        panic!("rails resolver")
    };
    assert!(rails.previous_keys.is_some());
    let redis = "[session]\nresolver = \"redis\"\n[session.redis]\nurl = \"redis://127.0.0.1\"\n\
                 cookie_format = \"express\"\n";
    let c = load(&format!(
        "{redis}cookie_secret_env = \"KEY\"\nprevious_cookie_secrets_env = \"OLD_KEYS\"\n"
    ))
    .unwrap();
    let ResolverConfig::Redis(config) = &c.session.resolver else {
        panic!("redis resolver")
    };
    assert!(config.previous_cookie_secrets.is_some());
    let p = problems(&format!(
        "{redis}previous_cookie_secrets_env = \"OLD_KEYS\"\n"
    ));
    assert!(
        has(
            &p,
            "session.redis.previous_cookie_secrets_env",
            "without cookie_secret"
        ),
        "{p:?}"
    );
    let p = problems(
        "[session]\nresolver = \"rails\"\n[session.rails]\nsecret_key_base_env = \"KEY\"\n\
         previous_keys_file = \"/no/such/file\"\n",
    );
    assert!(
        has(&p, "session.rails.previous_keys_file", "cannot read"),
        "{p:?}"
    );
}
