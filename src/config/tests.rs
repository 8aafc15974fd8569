use std::collections::HashMap;
use std::time::Duration;

use super::*;

pub(super) const BASE: &str = r#"
[upstream]
url = "http://127.0.0.1:3000"
[intercom]
app_id = "abc123de"
secret_env = "MSG"
[session]
resolver = "jwt"
[session.fields]
user_id = "/sub"
[session.jwt]
key_env = "KEY"
"#;

fn env() -> HashMap<String, String> {
    HashMap::from([
        ("MSG".to_string(), "  messenger-secret\n".to_string()),
        ("KEY".to_string(), "app-key".to_string()),
    ])
}

pub(super) fn load(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml(&format!("{BASE}{extra}"), "t.toml", &env())
}

pub(super) fn problems(text: &str) -> Vec<String> {
    match Config::from_toml(text, "t.toml", &env()) {
        Ok(_) => Vec::new(),
        Err(e) => e.issues.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn defaults_follow_the_contract() {
    let c = load("").unwrap();
    assert_eq!(c.server.listen, vec!["0.0.0.0:8080".parse().unwrap()]);
    assert_eq!(c.upstream.connect_timeout, Duration::from_secs(2));
    assert_eq!(c.upstream.timeout, Duration::from_secs(60));
    assert_eq!(c.intercom.token_ttl, Duration::from_secs(3600));
    assert_eq!(c.intercom.region, Region::Us);
    assert_eq!(c.intercom.mode, IdentityMode::Jwt);
    assert_eq!(c.intercom.anonymous, AnonymousPolicy::Skip);
    assert_eq!(
        c.intercom.widget_url,
        "https://widget.intercom.io/widget/abc123de"
    );
    assert_eq!(
        c.intercom.secret.expose(),
        b"messenger-secret",
        "secrets are trimmed"
    );
    assert_eq!(c.session.cookie, "session");
    assert_eq!(c.session.timeout, Duration::from_millis(300));
    assert!(c.logout.detect_cookie_clear);
    assert!(c.routes.matching("/anything").inject);
}

#[test]
fn regions_pick_api_base() {
    for (region, base) in [
        ("us", "https://api-iam.intercom.io"),
        ("eu", "https://api-iam.eu.intercom.io"),
        ("au", "https://api-iam.au.intercom.io"),
    ] {
        let text = BASE.replace(
            "secret_env = \"MSG\"",
            &format!("secret_env = \"MSG\"\nregion = \"{region}\""),
        );
        let c = Config::from_toml(&text, "t", &env()).unwrap();
        assert_eq!(c.intercom.region.api_base(), base);
    }
}

#[test]
fn listen_accepts_a_list_and_durations_parse() {
    let c = Config::from_toml(
        &format!("[server]\nlisten = [\"127.0.0.1:1\", \"[::1]:2\"]\nheader_read_timeout = \"750ms\"\nshutdown_timeout = \"1m 30s\"\n{BASE}"),
        "t",
        &env(),
    )
    .unwrap();
    assert_eq!(c.server.listen.len(), 2);
    assert_eq!(c.server.header_read_timeout, Duration::from_millis(750));
    assert_eq!(c.server.shutdown_timeout, Duration::from_secs(90));
}

#[test]
fn routes_first_match_wins_and_star_stays_in_a_segment() {
    let c = load(
        r#"
[[routes]]
path = "/admin/**"
inject = false
[[routes]]
path = "/billing/*"
attributes = { section = "billing", seats = 3 }
[[routes]]
path = "/billing/**"
inject = false
"#,
    )
    .unwrap();
    assert!(!c.routes.matching("/admin/users/1").inject);
    assert!(
        c.routes.matching("/admin").inject,
        "/admin/** does not match /admin itself"
    );
    let billing = c.routes.matching("/billing/invoices");
    assert!(billing.inject);
    assert_eq!(billing.attributes["section"], "billing");
    assert_eq!(billing.attributes["seats"], 3);
    assert!(
        !c.routes.matching("/billing/invoices/7").inject,
        "`*` must not cross '/'"
    );
    assert_eq!(
        c.routes.describe(),
        "/admin/** off, /billing/* on (+seats, +section), /billing/** off, others on"
    );
    assert_eq!(Routes::default().describe(), "every path on");
}

#[test]
fn routes_match_encoded_and_dotted_spellings_of_a_path() {
    let c = load(
        r#"
[[routes]]
path = "/admin/**"
inject = false
[[routes]]
path = "/billing/**"
attributes = { section = "billing" }
[[routes]]
path = "/public%2Fdocs/**"
attributes = { section = "docs" }
"#,
    )
    .unwrap();
    for path in [
        "/admin/panel",
        "/%61dmin/panel",
        "/%61%64%6d%69%6e/panel",
        "/admin%2fpanel",
        "/admin%2Fpanel",
        "/admin;x/panel",
        "/admin;jsessionid=1/panel",
        "//admin/panel",
        "/admin//panel",
        "/./admin/panel",
        "/x/../admin/panel",
        "/x/%2e%2e/admin/panel",
        "/x/..;/admin/panel",
        "/x%2F..%2Fadmin/panel",
        "/admin\\panel",
        "/admin%5Cpanel",
        // Stricter wins: the normalised form matches no rule, the path as sent does.
        "/admin/%2e%2e/x",
    ] {
        assert!(!c.routes.matching(path).inject, "{path}");
    }
    // Case is kept: paths are case-sensitive.
    assert!(c.routes.matching("/ADMIN/panel").inject);
    assert!(c.routes.matching("/%41dmin/panel").inject);
    // Between two routes that inject, the normalised form's applies.
    let billing = c.routes.matching("/%62illing/invoices");
    assert!(billing.inject);
    assert_eq!(billing.attributes["section"], "billing");
    // A rule written with an escape still matches the path as sent.
    assert_eq!(
        c.routes.matching("/public%2Fdocs/a").attributes["section"],
        "docs"
    );
    assert!(c.routes.matching("/public/docs/a").attributes.is_empty());
    assert!(c.routes.matching("/other;x/%70age").inject);
}

#[test]
fn custom_fields_become_attributes_and_reserved_names_are_refused() {
    let c = Config::from_toml(
        &BASE.replace(
            "user_id = \"/sub\"",
            "user_id = \"/sub\"\nemail = \"/email\"\nplan = \"/account/plan\"",
        ),
        "t",
        &env(),
    )
    .unwrap();
    assert_eq!(c.session.fields.email.as_deref(), Some("/email"));
    assert_eq!(
        c.session.fields.custom,
        vec![("plan".to_string(), "/account/plan".to_string())]
    );

    let p = problems(&BASE.replace("user_id = \"/sub\"", "user_id = \"/sub\"\nexp = \"/exp\""));
    assert_eq!(
        p,
        ["session.fields.exp: \"exp\" is reserved for the proxy's own claims"]
    );
}

#[test]
fn jwt_algorithms_must_share_one_family_and_keys_must_parse() {
    let p = problems(&BASE.replace(
        "key_env = \"KEY\"",
        "algorithms = [\"HS256\", \"RS256\"]\nkey_env = \"KEY\"",
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("session.jwt.algorithms: mixes algorithm families"),
        "{p:?}"
    );

    let p = problems(&BASE.replace(
        "key_env = \"KEY\"",
        "algorithms = [\"RS256\"]\nkey_env = \"KEY\"",
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("session.jwt.key_env: not a usable key"),
        "{p:?}"
    );
    assert!(
        !p[0].contains("app-key"),
        "the key material must not be printed: {p:?}"
    );

    let p = problems(&BASE.replace(
        "key_env = \"KEY\"",
        "algorithms = [\"none\"]\nkey_env = \"KEY\"",
    ));
    assert!(
        p[0].starts_with("session.jwt.algorithms: unknown algorithm \"none\""),
        "{p:?}"
    );
}

#[test]
fn the_chosen_resolver_needs_its_section_and_others_are_still_checked() {
    let p = problems(&BASE.replace("resolver = \"jwt\"", "resolver = \"redis\""));
    assert_eq!(
        p,
        [
            "session.redis: missing section [session.redis] (required when session.resolver = \"redis\")"
        ]
    );

    let text = format!(
        "{}\n[session.redis]\nurl = \"http://nope\"\nkey = \"sess:\"\ncookie_format = \"php\"\n[session.sql]\nurl = \"sqlite://x\"\nquery = \"SELECT 1\"\n[session.http]\nurl = \"/me\"\n",
        BASE
    );
    let p = problems(&text);
    for expected in [
        "session.redis.url: invalid Redis URL scheme \"http\"",
        "session.redis.key: key template \"sess:\" has no {sid}",
        "session.redis.cookie_format: unknown cookie format \"php\" (expected raw, express)",
        "session.sql.url: unsupported database URL scheme \"sqlite\"",
        "session.http.url: invalid URL \"/me\"",
    ] {
        assert!(
            p.iter().any(|l| l.starts_with(expected)),
            "missing {expected:?} in {p:?}"
        );
    }
}

#[test]
fn sql_query_needs_the_placeholder_of_its_database() {
    let with_sql = |url: &str, query: &str| {
        problems(&format!(
            "{}\n[session.sql]\nurl = \"{url}\"\nquery = \"{query}\"\n",
            BASE.replace("resolver = \"jwt\"", "resolver = \"sql\"")
        ))
    };
    assert!(with_sql("postgres://a@h/db", "SELECT * FROM s WHERE id = $1").is_empty());
    assert!(with_sql("mysql://root@h/db", "SELECT * FROM s WHERE id = ?").is_empty());
    assert_eq!(
        with_sql("mysql://root@h/db", "SELECT * FROM s WHERE id = $1"),
        ["session.sql.query: query has no ? parameter for the session id"]
    );
}

#[test]
fn secrets_need_exactly_one_source() {
    let p = problems(&BASE.replace(
        "secret_env = \"MSG\"",
        "secret_env = \"MSG\"\nsecret_file = \"/x\"",
    ));
    assert_eq!(
        p,
        ["intercom.secret_env: set only one of secret_env and secret_file"]
    );
    let p = problems(&BASE.replace("secret_env = \"MSG\"\n", ""));
    assert_eq!(
        p,
        ["intercom.secret_env: missing (set secret_env = \"VAR_NAME\" or secret_file = \"/path\")"]
    );
    let p = problems(
        &BASE
            .replace("\"MSG\"", "\"EMPTY\"")
            .replace("[session]", "[session]\n"),
    );
    assert_eq!(
        p,
        ["intercom.secret_env: environment variable EMPTY is not set"]
    );
}

/// `name` holding `contents` in a fresh directory, removed when the guard drops.
fn file_holding(name: &str, contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, contents).unwrap();
    (dir, file)
}

#[test]
fn secret_files_are_read_and_trimmed() {
    let (_dir, file) = file_holding("secret", "from-file\n");
    let text = BASE.replace(
        "secret_env = \"MSG\"",
        &format!("secret_file = \"{}\"", file.display()),
    );
    let c = Config::from_toml(&text, "t", &env()).unwrap();
    assert_eq!(c.intercom.secret.expose(), b"from-file");
    std::fs::write(&file, " \n").unwrap();
    let p = problems(&text);
    assert_eq!(
        p,
        [format!(
            "intercom.secret_file: file {} is empty",
            file.display()
        )]
    );
}

#[test]
fn missing_sections_and_unknown_top_level_keys() {
    let p = problems("[server]\nlisten = \"127.0.0.1:1\"\n[cache]\nsize = 1\n");
    assert_eq!(
        p,
        [
            "upstream: missing section [upstream]",
            "intercom: missing section [intercom]",
            "session: missing section [session]",
            "cache: unknown key (expected one of: server, upstream, intercom, session, logout, routes, admin, log)",
        ]
    );
}

#[test]
fn urls_durations_and_listeners_that_would_fail_at_run_time_are_refused() {
    let with_upstream = |url: &str| problems(&BASE.replace("http://127.0.0.1:3000", url));
    assert_eq!(
        with_upstream("http://127.0.0.1:99999"),
        [
            "upstream.url: invalid port \"99999\" in URL \"http://127.0.0.1:99999\" (expected 1-65535)"
        ]
    );
    assert_eq!(
        with_upstream("http://user:pw@127.0.0.1:3000"),
        ["upstream.url: URL must not carry credentials (user:password@)"]
    );
    assert!(with_upstream("http://[::1]:3000/app").is_empty());
    assert_eq!(
        problems(&format!(
            "[server]\nheader_read_timeout = \"300000000y\"\n{BASE}"
        )),
        ["server.header_read_timeout: \"300000000y\" is too long (at most 365d)"]
    );
    assert_eq!(
        problems(&format!(
            "[server]\nlisten = [\"0.0.0.0:80\", \"0.0.0.0:80\"]\n{BASE}"
        )),
        ["server.listen: 0.0.0.0:80 is listed twice"]
    );
}

#[test]
fn an_unusable_key_file_is_named_as_the_key_file() {
    let (_dir, file) = file_holding("key.pem", "not a PEM key");
    let text = BASE.replace(
        "key_env = \"KEY\"",
        &format!(
            "algorithms = [\"RS256\"]\nkey_file = \"{}\"",
            file.display()
        ),
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("session.jwt.key_file: not a usable key"),
        "{p:?}"
    );
}

#[test]
fn workers_default_to_one_per_cpu_and_must_be_at_least_one() {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    assert_eq!(load("").unwrap().server.workers, cpus);
    let four = Config::from_toml(&format!("[server]\nworkers = 4\n{BASE}"), "t.toml", &env());
    assert_eq!(four.unwrap().server.workers, 4);
    assert_eq!(
        problems(&format!("[server]\nworkers = 0\n{BASE}")),
        ["server.workers: 0 is out of range (expected 1 to 1024; leave it out for one per CPU)"]
    );
}
