//! `intercom-secure-proxy explain URL`: what the proxy would do with one page, and why, step
//! by step, for a support engineer asking "why is the Messenger not showing?".
//!
//! Nothing here decides anything: the request goes through the proxy's own layers (the
//! guard, the injection layer with its resolver, the forwarder) against the configured app
//! and session store, and the explanation is read off what they did: the outcome the page's
//! body carries ([`Injection`](crate::inject::Injection), what the access log and metrics
//! read), the app's answer as the layer received it, the page as it left, and the proxy's
//! own log events (why a session was refused, what the store said). The steps before the
//! exchange narrate with the same functions the layer calls (route match, cookie reading,
//! [`decide::step`](crate::inject::decide::step), marker checks).
//!
//! Cookie values, tokens and secrets are never printed: a cookie shows as its first four
//! characters and its length, a Messenger JWT as its decoded claims.

mod capture;
mod csp;
mod exchange;
mod outcome;
mod page;
mod session;
mod target;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request};
use http_body_util::Empty;
use tracing::instrument::WithSubscriber;

pub use target::{Target, TargetError};

use crate::StartError;
use crate::config::{AnonymousPolicy, Config, IdentityMode, Route, normalize_path};
use crate::inject::decide::RequestFacts;
use crate::inject::is_page_request;
use crate::logout::Logout;
use crate::net::Downstream;
use capture::Captured;
use exchange::Probe;

/// The address `explain`'s request comes from: the machine it runs on.
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Explains what the proxy configured by `config` does with `target`, writing plain text
/// to `out`. `Err` only when the config's layers cannot be built (what `check` reports);
/// anything the app or the store does is part of the explanation.
pub async fn explain(
    config: &Config,
    target: &Target,
    out: &mut dyn Write,
) -> Result<(), StartError> {
    let captured = Captured::default();
    let dispatch = captured.dispatch();
    run(config, target, out, &captured)
        .with_subscriber(dispatch)
        .await
}

/// Plain text, one step per group of lines; write errors (a closed pipe) end nothing.
pub(super) struct Report<'w> {
    out: &'w mut dyn Write,
    steps: u8,
}

impl Report<'_> {
    /// A step's title, numbered.
    fn step(&mut self, title: &str) {
        self.steps += 1;
        let _ = writeln!(self.out, "\n{}. {title}", self.steps);
    }

    /// A line of the current step.
    fn line(&mut self, text: impl AsRef<str>) {
        let _ = writeln!(self.out, "   {}", text.as_ref());
    }

    /// A line outside the steps.
    fn plain(&mut self, text: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", text.as_ref());
    }
}

async fn run(
    config: &Config,
    target: &Target,
    out: &mut dyn Write,
    captured: &Captured,
) -> Result<(), StartError> {
    // Everything `check` builds: a config it refuses is not explained.
    let prepared = crate::prepare(config)?;
    let inject = prepared.inject().clone();
    let probe = Probe::new(config, &inject)?;
    let identity = inject.identity();
    // The layer's own marker checks: the key is derived from the Messenger secret.
    let logout = Logout::new(
        &config.logout,
        identity.cookie_name(),
        &config.intercom.app_id,
        config.intercom.cookie_domain.as_deref(),
        &config.intercom.secret,
    );
    let host = target
        .host
        .clone()
        .or_else(|| config.upstream.url.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_string());
    let mut report = Report { out, steps: 0 };
    report.plain(format!(
        "explain GET {}://{host}{}",
        target.scheme, target.path_and_query
    ));
    report.plain(format!(
        "  app {}, asked as a browser at {PEER} would ask",
        config.upstream.url
    ));

    let mut sent = target.headers.clone();
    if let Ok(value) = HeaderValue::from_str(&host) {
        sent.insert(header::HOST, value);
    }
    let downstream = Downstream {
        peer: SocketAddr::new(PEER, 0),
        scheme: target.scheme,
        trusted: false,
    };
    // The headers as the layer reads them: identity headers from an untrusted peer removed.
    let mut screened = Request::new(());
    *screened.headers_mut() = sent.clone();
    screened.extensions_mut().insert(downstream);
    if let Some(trust) = identity.header_trust() {
        trust.screen(&mut screened);
    }
    let headers = screened.headers();

    let path = target.path();
    let matched = config.routes.matching_rule(path);
    let token_path = config.intercom.mode == IdentityMode::Jwt
        && config.intercom.token_path.as_deref() == Some(path);
    let facts = RequestFacts {
        method: &Method::GET,
        token_path,
        logout_path: logout.is_logout_path(path),
        route_injects: matched.1.inject,
        page_request: is_page_request(headers),
        session_cookie: identity.presents_session(headers),
        pending_shutdown: logout.pending_shutdown(headers),
        booted_for: logout.recorded_boot(headers),
        boot_visitors: config.intercom.anonymous == AnonymousPolicy::Boot,
    };
    route_step(&mut report, config, path, matched, &facts);
    session::presented(&mut report, config, &identity, &sent, PEER);
    let looked = session::lookup(&mut report, config, &identity, &facts, headers, captured).await;
    session::markers(&mut report, &logout, headers, &looked);

    let mut request = Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = match target.path_and_query.parse() {
        Ok(uri) => uri,
        // Checked when the target was parsed.
        Err(_) => http::Uri::from_static("/"),
    };
    *request.headers_mut() = sent;
    let limit = config.upstream.connect_timeout
        + config.upstream.timeout
        + config.session.timeout * 2
        + Duration::from_secs(35);
    captured.take();
    let observed = probe.send(request, downstream, limit).await;
    let logged = captured.take();
    match observed {
        Ok(observed) => {
            let texts = page::Texts::of(&observed);
            page::response(&mut report, &observed, &texts, &logged, &facts);
            outcome::outcome(&mut report, config, &observed, &texts, &facts);
        }
        Err(e) => {
            report.step("The app's answer");
            report.line(format!(
                "the request through the proxy did not complete: {e}"
            ));
            for event in &logged {
                report.line(format!("log {}: {}", event.level, event.line()));
            }
        }
    }
    Ok(())
}

/// Step 1: the route, the logout and token paths, whether this is a page load.
fn route_step(
    report: &mut Report<'_>,
    config: &Config,
    path: &str,
    (rule, route): (Option<&str>, &Route),
    facts: &RequestFacts<'_>,
) {
    report.step("Route");
    let normalized = normalize_path(path);
    if normalized != path {
        report.line(format!(
            "path {path} (the app most likely routes it as {normalized})"
        ));
    } else {
        report.line(format!("path {path}"));
    }
    let state = |on: bool| if on { "on" } else { "off" };
    report.line(match rule {
        Some(glob) => format!(
            "[[routes]] rule \"{glob}\" matches: injection {}",
            state(facts.route_injects)
        ),
        None => "no [[routes]] rule matches: injection on (the default)".to_string(),
    });
    if !route.attributes.is_empty() {
        let attributes: Vec<String> = route
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        report.line(format!(
            "signed into the JWT on this route: {}",
            attributes.join(", ")
        ));
    }
    report.line(match facts.logout_path {
        true => format!(
            "logout path: yes ([logout] paths: {})",
            config.logout.paths.join(", ")
        ),
        false => "logout path: no".to_string(),
    });
    match (facts.token_path, &config.intercom.token_path) {
        (true, _) => report.line(
            "token endpoint: yes: the proxy answers it itself with a fresh Messenger JWT; the \
             app never sees it",
        ),
        (false, Some(token_path)) => report.line(format!("token endpoint: no ({token_path})")),
        (false, None) => {}
    }
    report.line(match facts.page_request {
        true => "page load: yes (GET, asks for HTML)",
        false => "page load: no (Sec-Fetch-Dest or Accept does not ask for HTML): passed through",
    });
}
