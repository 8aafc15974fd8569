//! Steps 2 to 4: the session the request presents, whom the configured resolver says it
//! names (the real [`Identity`], timed), and the proxy's marker cookies.

use std::net::IpAddr;
use std::time::Instant;

use http::HeaderMap;
use http::header::COOKIE;

use super::Report;
use super::capture::Captured;
use super::target::redacted;
use crate::config::{Config, ResolverConfig};
use crate::identity::{
    Identity, LookupResult, MAX_COOKIE_LEN, Resolution, User, cookie_values, session_cookie,
};
use crate::inject::decide::{RequestFacts, Step};
use crate::logout::{BOOTED_FOR_COOKIE, Logout, PENDING_SHUTDOWN_COOKIE, VISITOR_MARKER};

/// Step 2: the session cookie (its name, never its value), or for `resolver = "header"`
/// the identity headers and whether this peer may send them.
pub(super) fn presented(
    report: &mut Report<'_>,
    config: &Config,
    identity: &Identity,
    sent: &HeaderMap,
    peer: IpAddr,
) {
    report.step("Session");
    if let ResolverConfig::Header(header) = &config.session.resolver {
        let trusted = identity
            .header_trust()
            .is_some_and(|t| t.trusts(Some(peer)));
        for name in &header.headers {
            report.line(match (sent.contains_key(name), trusted) {
                (false, _) => format!("{name}: not sent"),
                (true, true) => {
                    format!("{name}: sent, believed ({peer} is in session.header.trusted_proxies)")
                }
                (true, false) => format!(
                    "{name}: sent, removed before anything reads it: {peer} is not in \
                     session.header.trusted_proxies"
                ),
            });
        }
        return;
    }
    let name = identity.cookie_name();
    let names = cookie_names(sent);
    let found = match session_cookie(sent, name) {
        Some(value) if value.len() > MAX_COOKIE_LEN => format!(
            "session.cookie \"{name}\": found, {}, but longer than {} KiB: not looked at \
             (no session)",
            redacted(value),
            MAX_COOKIE_LEN / 1024
        ),
        Some(value) => format!("session.cookie \"{name}\": found, {}", redacted(value)),
        None => match cookie_values(sent, name).count() {
            0 if names.is_empty() => format!("session.cookie \"{name}\": not sent (no cookies)"),
            0 => format!("session.cookie \"{name}\": not sent"),
            1 => format!(
                "session.cookie \"{name}\": sent, but in a Cookie header that frameworks split \
                 differently (a quote, a space or backslash in a value, an empty value, a \
                 lookalike name): the proxy refuses it as ambiguous, so no session"
            ),
            n => format!(
                "session.cookie \"{name}\": sent {n} times: ambiguous (frameworks disagree on \
                 which one the app reads), so the proxy refuses it: no session"
            ),
        },
    };
    report.line(found);
    let others: Vec<&str> = names.iter().copied().filter(|n| *n != name).collect();
    if !others.is_empty() {
        report.line(format!("other cookies (names only): {}", others.join(", ")));
    }
}

/// The names of the request's cookies, in order (never their values).
fn cookie_names(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name.trim()))
        .filter(|name| !name.is_empty())
        .collect()
}

/// Whom the session named, as the lookup step found it.
pub(super) struct Looked {
    pub(super) user: Option<User>,
    pub(super) result: LookupResult,
}

/// Step 3: the resolver and `[session.lookup]`, asked through the layer's own [`Identity`]
/// (its cache included, which the page's request then reuses), with the time it took and
/// what the identity code logged on the way.
pub(super) async fn lookup(
    report: &mut Report<'_>,
    config: &Config,
    identity: &Identity,
    facts: &RequestFacts<'_>,
    headers: &HeaderMap,
    captured: &Captured,
) -> Looked {
    report.step("Session lookup");
    report.line(format!(
        "resolver: {} ({})",
        resolver_name(&config.session.resolver),
        identity.describe_store()
    ));
    match &config.session.lookup {
        Some(_) => report.line(
            "[session.lookup]: configured; the user's record is fetched after the resolver, \
             within the same lookup, timeout and cache",
        ),
        None => report.line("[session.lookup]: not configured"),
    }
    let anonymous = Looked {
        user: None,
        result: LookupResult::Anonymous,
    };
    let identify = match crate::inject::decide::step(facts) {
        // The endpoint identifies the session itself.
        Step::Token => true,
        Step::Forward { identify } => identify,
    };
    if !identify {
        report.line(format!("not looked up: {}", why_not_identified(facts)));
        return anonymous;
    }
    if !facts.session_cookie {
        report.line("not looked up: the request presents no session");
        return anonymous;
    }
    captured.take();
    let started = Instant::now();
    let (resolution, result) = identity.identify_traced(headers).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let logged = captured.take();
    let error = logged
        .iter()
        .filter(|e| e.from("identity"))
        .find_map(|e| e.field("error"));
    report.line(match (result, error) {
        (LookupResult::Error, Some(error)) => format!("looked up in {ms:.1} ms: error: {error}"),
        (LookupResult::Timeout, _) => format!(
            "looked up in {ms:.1} ms: timeout (no answer within session.timeout, {})",
            humantime::format_duration(identity.timeout())
        ),
        (result, _) => format!("looked up in {ms:.1} ms: {}", result.label()),
    });
    let user = match resolution {
        Resolution::User(user) => Some(user),
        Resolution::Anonymous => None,
    };
    match &user {
        Some(user) => fields(report, user),
        None if result == LookupResult::Anonymous => report.line(
            "the session names no user: no user id at session.fields.user_id, or a session \
             that is unknown, expired or forged",
        ),
        None => {}
    }
    for event in logged.iter().filter(|e| e.from("identity")) {
        report.line(format!("log {}: {}", event.level, event.line()));
    }
    Looked { user, result }
}

/// What the resolver mapped, as it will be signed.
fn fields(report: &mut Report<'_>, user: &User) {
    report.line(format!(
        "user_id: {}",
        serde_json::Value::from(user.id.as_str())
    ));
    let shown = |v: &Option<String>| match v {
        Some(v) => serde_json::Value::from(v.as_str()).to_string(),
        None => "(none)".to_string(),
    };
    report.line(format!("email: {}", shown(&user.email)));
    report.line(format!("name: {}", shown(&user.name)));
    if !user.attributes.is_empty() {
        let attributes: Vec<String> = user
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        report.line(format!("attributes: {}", attributes.join(", ")));
    }
}

/// Why [`step`](crate::inject::decide::step) forwards without identifying.
fn why_not_identified(facts: &RequestFacts<'_>) -> &'static str {
    if !facts.route_injects {
        "the route has inject = false"
    } else if facts.logout_path {
        "a logout path: its page never boots the Messenger"
    } else if !facts.page_request {
        "not a page load (the request does not ask for HTML: Sec-Fetch-Dest or Accept)"
    } else {
        "only GET and POST page loads are identified"
    }
}

fn resolver_name(resolver: &ResolverConfig) -> &'static str {
    match resolver {
        ResolverConfig::Jwt(_) => "jwt",
        ResolverConfig::Http(_) => "http",
        ResolverConfig::Redis(_) => "redis",
        ResolverConfig::Sql(_) => "sql",
        ResolverConfig::Laravel(_) => "laravel",
        ResolverConfig::Php(_) => "php",
        ResolverConfig::Header(_) => "header",
        ResolverConfig::Rails(_) => "rails",
        ResolverConfig::Django(_) => "django",
        ResolverConfig::Flask(_) => "flask",
    }
}

/// Step 4: the proxy's marker cookies, checked with the Messenger secret's marker key as
/// the layer checks them (a forged or unknown value is no marker at all).
pub(super) fn markers(
    report: &mut Report<'_>,
    logout: &Logout,
    headers: &HeaderMap,
    looked: &Looked,
) {
    report.step("Logout and user-switch markers");
    let booted = cookie_values(headers, BOOTED_FOR_COOKIE).count();
    let recorded = logout.recorded_boot(headers);
    let current = looked
        .user
        .as_ref()
        .map(|user| (user, logout.booted_for(Some(&user.id))));
    let unknown = matches!(looked.result, LookupResult::Error | LookupResult::Timeout);
    report.line(match (booted, recorded) {
        (0, _) => {
            format!("{BOOTED_FOR_COOKIE}: not sent (no Messenger booted in this browser yet)")
        }
        (_, None) => format!(
            "{BOOTED_FOR_COOKIE}: sent, but its signature does not verify (forged, or signed \
             with another Messenger secret): ignored"
        ),
        (_, Some(_)) if unknown => format!(
            "{BOOTED_FOR_COOKIE}: valid; the session could not be resolved, so it is left as \
             it is (a store outage shuts no one's Messenger down)"
        ),
        (_, Some(recorded)) => match &current {
            Some((user, marker))
                if recorded == marker.as_str()
                    || logout.records_user(recorded, &user.id, marker) =>
            {
                format!("{BOOTED_FOR_COOKIE}: valid, booted for this user: no shutdown needed")
            }
            Some(_) => format!(
                "{BOOTED_FOR_COOKIE}: valid, booted for someone else (a user switch): the \
                 page shuts the Messenger down before it boots"
            ),
            None if recorded == VISITOR_MARKER => {
                format!("{BOOTED_FOR_COOKIE}: valid, booted for a visitor")
            }
            None => format!(
                "{BOOTED_FOR_COOKIE}: valid, booted for a user, and this request names none: \
                 a page that gets the snippet shuts the Messenger down"
            ),
        },
    });
    let pending = cookie_values(headers, PENDING_SHUTDOWN_COOKIE).count();
    report.line(match (pending, logout.pending_shutdown(headers)) {
        (0, _) => format!("{PENDING_SHUTDOWN_COOKIE}: not sent (no logout pending)"),
        (_, true) => format!(
            "{PENDING_SHUTDOWN_COOKIE}: valid, a logout is pending: the next page runs \
             Intercom('shutdown') first"
        ),
        (_, false) => format!(
            "{PENDING_SHUTDOWN_COOKIE}: sent, but forged, expired or signed with another \
             Messenger secret: ignored"
        ),
    });
}
