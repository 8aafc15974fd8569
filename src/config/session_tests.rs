//! `[session.laravel]`, `[session.php]` and `[session.header]`: what `check` says about each.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

const BASE: &str = r#"
[upstream]
url = "http://127.0.0.1:3000"
[intercom]
app_id = "abc123de"
secret_env = "MSG"
[session.fields]
user_id = "/user_id"
"#;

fn env() -> HashMap<String, String> {
    HashMap::from([
        ("MSG".to_string(), "messenger-secret".to_string()),
        (
            "APP_KEY".to_string(),
            "base64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string(),
        ),
    ])
}

fn load(session: &str) -> Result<Config, Vec<String>> {
    Config::from_toml(&format!("{BASE}\n{session}"), "t.toml", &env())
        .map_err(|e| e.issues.iter().map(ToString::to_string).collect())
}

/// The problems `check` reports for `session`; panics when it has none.
fn problems_with(session: &str) -> Vec<String> {
    match load(session) {
        Ok(_) => panic!("expected problems with {session}"),
        Err(problems) => problems,
    }
}

fn has(problems: &[String], key: &str, words: &str) -> bool {
    problems
        .iter()
        .any(|p| p.contains(&format!("session.{key}")) && p.contains(words))
}

#[test]
fn php_defaults_to_phpsessid_in_debians_directory() {
    let c = load("[session]\nresolver = \"php\"\n[session.php]\n").unwrap();
    assert_eq!(c.session.cookie, "PHPSESSID");
    let ResolverConfig::Php(php) = &c.session.resolver else {
        panic!("php resolver")
    };
    assert_eq!(php.serialize_handler, PhpSerializeHandler::Php);
    assert!(matches!(
        &php.store,
        SessionStore::Files { dir, prefix: "sess_", levels: 0 } if dir.to_str() == Some("/var/lib/php/sessions")
    ));
    let c =
        load("[session]\nresolver = \"php\"\n[session.php]\npath = \"2;/srv/sessions\"\n").unwrap();
    let ResolverConfig::Php(php) = &c.session.resolver else {
        panic!("php resolver")
    };
    assert!(matches!(&php.store, SessionStore::Files { levels: 2, .. }));
}

#[test]
fn php_settings_that_cannot_work_are_named() {
    let problems = problems_with(
        "[session]\nresolver = \"php\"\n[session.php]\nsave_handler = \"memcached\"\nserialize_handler = \"igbinary\"\n",
    );
    assert!(
        has(&problems, "php.save_handler", "memcached"),
        "{problems:?}"
    );
    assert!(
        has(&problems, "php.serialize_handler", "igbinary"),
        "{problems:?}"
    );
    let problems =
        problems_with("[session]\nresolver = \"php\"\n[session.php]\npath = \"relative/dir\"\n");
    assert!(has(&problems, "php.path", "absolute"), "{problems:?}");
    let problems = problems_with(
        "[session]\nresolver = \"php\"\n[session.php]\nsave_handler = \"redis\"\nurl = \"http://x\"\nkey = \"nosid\"\n",
    );
    assert!(has(&problems, "php.url", "scheme"), "{problems:?}");
    assert!(has(&problems, "php.key", "{sid}"), "{problems:?}");
}

#[test]
fn laravel_reads_its_key_driver_and_lifetime() {
    let c = load(
        "[session]\nresolver = \"laravel\"\n[session.laravel]\napp_key_env = \"APP_KEY\"\ndriver = \"database\"\nurl = \"postgres://127.0.0.1/app\"\nlifetime = \"30m\"\n",
    )
    .unwrap();
    assert_eq!(c.session.cookie, "laravel_session");
    let ResolverConfig::Laravel(laravel) = &c.session.resolver else {
        panic!("laravel resolver")
    };
    assert_eq!(laravel.cipher, "aes-256-cbc");
    assert_eq!(laravel.lifetime, Duration::from_secs(30 * 60));
    assert!(matches!(&laravel.store, SessionStore::Database { table, .. } if table == "sessions"));
    let c = load(
        "[session]\nresolver = \"laravel\"\n[session.laravel]\napp_key_env = \"APP_KEY\"\ndriver = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"\n",
    )
    .unwrap();
    let ResolverConfig::Laravel(laravel) = &c.session.resolver else {
        panic!("laravel resolver")
    };
    assert!(
        matches!(&laravel.store, SessionStore::Redis { key, .. } if key == "laravel_database_laravel_cache_:{sid}")
    );
}

#[test]
fn laravel_settings_that_cannot_work_are_named() {
    let problems = problems_with(
        "[session]\nresolver = \"laravel\"\n[session.laravel]\ncipher = \"des\"\ndriver = \"database\"\nurl = \"postgres://x/app\"\ntable = \"sessions; DROP TABLE users\"\n",
    );
    assert!(
        has(&problems, "laravel.app_key_env", "missing"),
        "{problems:?}"
    );
    assert!(has(&problems, "laravel.cipher", "des"), "{problems:?}");
    assert!(
        has(&problems, "laravel.table", "not a table name"),
        "{problems:?}"
    );
    let problems = problems_with(
        "[session]\nresolver = \"laravel\"\n[session.laravel]\napp_key_env = \"APP_KEY\"\n",
    );
    assert!(has(&problems, "laravel.driver", "missing"), "{problems:?}");
    let problems = problems_with(
        "[session]\nresolver = \"laravel\"\n[session.laravel]\napp_key_env = \"NOT_SET\"\ndriver = \"file\"\n",
    );
    assert!(
        has(&problems, "laravel.app_key_env", "NOT_SET"),
        "{problems:?}"
    );
    assert!(has(&problems, "laravel.path", "missing"), "{problems:?}");
}

#[test]
fn header_needs_trusted_proxies_and_header_names() {
    let c = load(
        "[session]\nresolver = \"header\"\n[session.header]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\nheaders = [\"X-Auth-Request-User\"]\n",
    )
    .unwrap();
    let ResolverConfig::Header(header) = &c.session.resolver else {
        panic!("header resolver")
    };
    assert_eq!(header.trusted_proxies.len(), 3);
    assert_eq!(header.headers[0].as_str(), "x-auth-request-user");
    let problems = problems_with("[session]\nresolver = \"header\"\n[session.header]\n");
    assert!(
        has(&problems, "header.trusted_proxies", "missing"),
        "{problems:?}"
    );
    assert!(has(&problems, "header.headers", "missing"), "{problems:?}");
    let problems = problems_with(
        "[session]\nresolver = \"header\"\n[session.header]\ntrusted_proxies = []\nheaders = [\"X-User\"]\n",
    );
    assert!(
        has(&problems, "header.trusted_proxies", "empty"),
        "{problems:?}"
    );
    let problems = problems_with(
        "[session]\nresolver = \"header\"\n[session.header]\ntrusted_proxies = [\"0.0.0.0/0\"]\nheaders = [\"X-User\"]\n",
    );
    assert!(
        has(&problems, "header.trusted_proxies", "every address"),
        "{problems:?}"
    );
}

#[test]
fn frameworks_read_their_secrets_and_defaults() {
    let c = load("[session]\nresolver = \"rails\"\ncookie = \"_app_session\"\n[session.rails]\nsecret_key_base_env = \"APP_KEY\"\n").unwrap();
    let ResolverConfig::Rails(rails) = &c.session.resolver else {
        panic!("rails resolver")
    };
    assert_eq!(
        (rails.digest, rails.cipher),
        (RailsDigest::Auto, RailsCipher::Aes256Gcm)
    );
    let c = load("[session]\nresolver = \"django\"\n[session.django]\nsecret_key_env = \"APP_KEY\"\nbackend = \"db\"\nurl = \"mysql://root@127.0.0.1/app\"\n").unwrap();
    assert_eq!(c.session.cookie, "sessionid");
    let ResolverConfig::Django(django) = &c.session.resolver else {
        panic!("django resolver")
    };
    assert!(
        matches!(&django.backend, DjangoBackend::Db { table, .. } if table == "django_session")
    );
    assert_eq!(django.max_age, Duration::from_secs(1_209_600));
    let c =
        load("[session]\nresolver = \"flask\"\n[session.flask]\nsecret_key_env = \"APP_KEY\"\n")
            .unwrap();
    let ResolverConfig::Flask(flask) = &c.session.resolver else {
        panic!("flask resolver")
    };
    assert_eq!(flask.max_age, Duration::from_secs(31 * 24 * 3600));
}

#[test]
fn framework_settings_that_cannot_work_are_named() {
    let problems = problems_with(
        "[session]\nresolver = \"rails\"\n[session.rails]\ndigest = \"md5\"\ncipher = \"aes-128-gcm\"\n",
    );
    assert!(
        has(&problems, "rails.secret_key_base_env", "missing"),
        "{problems:?}"
    );
    assert!(has(&problems, "rails.digest", "md5"), "{problems:?}");
    assert!(
        has(&problems, "rails.cipher", "aes-128-gcm"),
        "{problems:?}"
    );
    let problems = problems_with(
        "[session]\nresolver = \"django\"\n[session.django]\nsecret_key_env = \"APP_KEY\"\nbackend = \"db\"\nurl = \"sqlite:///db.sqlite3\"\n",
    );
    assert!(has(&problems, "django.url", "sqlite"), "{problems:?}");
    let problems = problems_with(
        "[session]\nresolver = \"django\"\n[session.django]\nsecret_key_env = \"APP_KEY\"\n",
    );
    assert!(has(&problems, "django.backend", "missing"), "{problems:?}");
    let problems = problems_with(
        "[session]\nresolver = \"flask\"\n[session.flask]\nsecret_key_env = \"UNSET\"\n",
    );
    assert!(
        has(&problems, "flask.secret_key_env", "UNSET"),
        "{problems:?}"
    );
}

#[test]
fn lookup_is_one_query_or_one_url_and_its_fields_need_it() {
    let jwt = "[session.jwt]\nkey_env = \"APP_KEY\"\n";
    let c = load(&format!(
        "[session]\nresolver = \"jwt\"\n{jwt}[session.lookup]\nurl = \"postgres://127.0.0.1/app\"\nquery = \"SELECT email FROM users WHERE id = $1\"\n"
    ))
    .unwrap();
    assert!(matches!(c.session.lookup, Some(LookupConfig::Sql { .. })));
    let c = load(&format!(
        "[session]\nresolver = \"jwt\"\n{jwt}[session.lookup]\nurl = \"http://127.0.0.1:3000/users/{{user_id}}\"\n"
    ))
    .unwrap();
    assert!(matches!(c.session.lookup, Some(LookupConfig::Http { .. })));

    let problems = problems_with(&format!(
        "[session]\nresolver = \"jwt\"\n{jwt}[session.lookup]\nurl = \"mysql://root@127.0.0.1/app\"\nquery = \"SELECT email FROM users WHERE id = $1\"\n"
    ));
    assert!(
        has(&problems, "lookup.query", "no ? parameter"),
        "{problems:?}"
    );
    let problems = problems_with(&format!(
        "[session]\nresolver = \"jwt\"\n{jwt}[session.lookup]\nurl = \"http://127.0.0.1:3000/users\"\n"
    ));
    assert!(has(&problems, "lookup.url", "{user_id}"), "{problems:?}");
    let text = BASE.replace(
        "user_id = \"/user_id\"",
        "user_id = \"/sub\"\nemail = \"/lookup/email\"",
    );
    let problems = match Config::from_toml(
        &format!("{text}\n[session]\nresolver = \"jwt\"\n{jwt}"),
        "t.toml",
        &env(),
    ) {
        Ok(_) => panic!("a /lookup pointer without [session.lookup] is refused"),
        Err(e) => e.issues.iter().map(ToString::to_string).collect::<Vec<_>>(),
    };
    assert!(
        has(&problems, "fields.email", "no [session.lookup]"),
        "{problems:?}"
    );
}
