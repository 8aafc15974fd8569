//! Step 6: what became of the page, in the labels the metrics and the access log use
//! ([`PassReason::label`]), and what the snippet the proxy put in does and signs: the
//! claims of its Messenger JWT, decoded, never the token.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::Report;
use super::exchange::Observed;
use super::page::{Inserted, Texts};
use super::target::redacted;
use crate::config::{AnonymousPolicy, Config};
use crate::inject::PassReason;
use crate::inject::decide::RequestFacts;

/// Step 6, and the one-line summary.
pub(super) fn outcome(
    report: &mut Report<'_>,
    config: &Config,
    observed: &Observed,
    texts: &Texts,
    facts: &RequestFacts<'_>,
) {
    report.step("Outcome");
    let summary = match observed.injection {
        None if facts.token_path => {
            token_answer(report, observed, texts);
            format!("token endpoint answered {}", observed.status)
        }
        None => {
            report.line(
                "not a page load: the answer passed through untouched (not counted as a page)",
            );
            "passed through (not a page load)".to_string()
        }
        Some(Err(reason)) => {
            report.line(format!("passed: {}", reason.label()));
            report.line(format!("why: {}", why(reason, config)));
            format!("passed: {}", reason.label())
        }
        Some(Ok(())) => match &texts.snippet {
            Some(snippet) => {
                let kind = kind(snippet);
                report.line(format!("injected: {kind}"));
                if facts.logout_path {
                    report.line("this is the app's logout page: the Messenger shuts down here");
                }
                if let Some(settings) = settings(&snippet.script) {
                    signed(report, &settings);
                }
                if let Some(after) = refresh_secs(&snippet.script) {
                    report.line(format!(
                        "token refresh: the page fetches a fresh JWT from {} after {after} s",
                        config.intercom.token_path.as_deref().unwrap_or("?")
                    ));
                }
                format!("injected: {kind}")
            }
            None => {
                report.line("injected (the snippet was not found in the part of the body read)");
                "injected".to_string()
            }
        },
    };
    report.plain(format!("\n=> {summary}"));
}

/// What the snippet does, from the script the layer rendered.
fn kind(snippet: &Inserted) -> &'static str {
    let script = snippet.script.as_str();
    // The up-front shutdown follows the loader; the refresh's is conditional.
    let shutdown = script.contains("})();window.Intercom('shutdown');");
    let boot = script.starts_with("window.intercomSettings=")
        || script.contains("window.Intercom('boot',");
    match (shutdown, boot) {
        (true, true) => "shutdown then boot",
        (true, false) => "shutdown only",
        (false, _) => "boot",
    }
}

/// The settings the snippet boots with (the JSON after `intercomSettings=` or in `boot`).
fn settings(script: &str) -> Option<Map<String, Value>> {
    let start = match script.strip_prefix("window.intercomSettings=") {
        Some(rest) => rest,
        None => script.split_once("window.Intercom('boot',")?.1,
    };
    let mut values = serde_json::Deserializer::from_str(start).into_iter::<Value>();
    match values.next()? {
        Ok(Value::Object(settings)) => Some(settings),
        _ => None,
    }
}

/// The settings' identity: the JWT's claims (decoded, not the token), or the `user_hash`
/// mode's fields (the hash redacted).
fn signed(report: &mut Report<'_>, settings: &Map<String, Value>) {
    for key in ["app_id", "api_base"] {
        if let Some(value) = settings.get(key) {
            report.line(format!("{key}: {value}"));
        }
    }
    if let Some(token) = settings.get("intercom_user_jwt").and_then(Value::as_str) {
        match claims(token) {
            Some(claims) => {
                report.line("intercom_user_jwt: signed with the Messenger secret; its claims:");
                show_claims(report, &claims);
            }
            None => report.line("intercom_user_jwt: present, but its claims cannot be read"),
        }
        return;
    }
    if settings.contains_key("user_hash") {
        report.line("user_hash mode (no JWT); settings:");
        for (key, value) in settings {
            match key.as_str() {
                "app_id" | "api_base" => {}
                "user_hash" => report.line(format!(
                    "  user_hash: {}",
                    redacted(value.as_str().unwrap_or_default())
                )),
                _ => report.line(format!("  {key}: {value}")),
            }
        }
        return;
    }
    report.line("no identity: the Messenger boots for a visitor");
}

/// The claims of a JWT, decoded (the signature is the Messenger's to check).
fn claims(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// `user_id`, `email`, `name`, the custom attributes, then `iat` and `exp` with how long
/// the token stays valid.
fn show_claims(report: &mut Report<'_>, claims: &Map<String, Value>) {
    let first = ["user_id", "email", "name"];
    let last = ["iat", "exp"];
    let ordered = first.iter().filter_map(|k| claims.get_key_value(*k)).chain(
        claims
            .iter()
            .filter(|(k, _)| !first.contains(&k.as_str()) && !last.contains(&k.as_str())),
    );
    for (key, value) in ordered {
        report.line(format!("  {key}: {value}"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(iat) = claims.get("iat").and_then(Value::as_u64) {
        report.line(format!("  iat: {iat}"));
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
        let left = std::time::Duration::from_secs(exp.saturating_sub(now));
        report.line(format!(
            "  exp: {exp} (valid for {} more)",
            humantime::format_duration(left)
        ));
    }
}

/// Seconds until the page's first token refresh, when it has one.
fn refresh_secs(script: &str) -> Option<u64> {
    let at = script.find("fetch(")?;
    let tail = &script[at..];
    let timer = tail.rfind("setTimeout(r,")? + "setTimeout(r,".len();
    let digits: String = tail[timer..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The token endpoint's JSON answer: its status and the claims it signed.
fn token_answer(report: &mut Report<'_>, observed: &Observed, texts: &Texts) {
    report.line(format!("token endpoint answered {}", observed.status));
    let answer: Option<Map<String, Value>> = serde_json::from_str(&texts.sent).ok();
    if let Some(token) = answer
        .as_ref()
        .and_then(|a| a.get("intercom_user_jwt"))
        .and_then(Value::as_str)
        .and_then(claims)
    {
        report.line("intercom_user_jwt: signed with the Messenger secret; its claims:");
        show_claims(report, &token);
    }
}

/// What a pass reason means for this config.
fn why(reason: PassReason, config: &Config) -> String {
    let visitors = match config.intercom.anonymous {
        AnonymousPolicy::Skip => "visitors get no Messenger (intercom.anonymous = \"skip\")",
        AnonymousPolicy::Boot => "no Messenger was booted for anyone",
    };
    match reason {
        PassReason::NoSession => format!("the request carries no usable session, and {visitors}"),
        PassReason::Visitor => {
            format!("the session names no user (a visitor's, expired or forged), and {visitors}")
        }
        PassReason::ResolverError => {
            "the session store failed: whom the session names is unknown, so the page is served \
             without identity"
                .into()
        }
        PassReason::ResolverTimeout => {
            "the session store did not answer within session.timeout: the page is served without \
             identity"
                .into()
        }
        PassReason::RouteOff => "the path's [[routes]] rule has inject = false".into(),
        PassReason::LogoutPath => {
            "a [logout] paths path that logged no session out: its pages never boot the Messenger"
                .into()
        }
        PassReason::Not2xx => "the answer is not a 2xx page".into(),
        PassReason::NoContent => "a 204 has no page".into(),
        PassReason::PartialContent => "a part of a page (206 or Content-Range)".into(),
        PassReason::NotHtml => "the answer is not HTML (text/html or application/xhtml+xml)".into(),
        PassReason::Attachment => "a download (Content-Disposition: attachment)".into(),
        PassReason::UnknownEncoding => {
            "a charset (not ASCII-compatible) or a content coding (not gzip, deflate or br) the \
             proxy cannot read"
                .into()
        }
        PassReason::SignError => "the user's settings could not be signed".into(),
        PassReason::MessengerPresent => {
            "the page loads the Messenger itself before the insertion point".into()
        }
        PassReason::ParserBailout => {
            "the HTML parser reached its memory cap before the insertion point".into()
        }
        PassReason::NoInsertionPoint => {
            "the page ends inside markup, with no </head> or <body> before".into()
        }
        PassReason::CspUnreadable => "a <meta> CSP the proxy cannot read with certainty".into(),
        PassReason::AmbiguousMarkup => {
            "markup before the insertion point the HTML parser would read differently from a \
             browser (a <script>, <style>, <title>... start tag ending in `attr=>`)"
                .into()
        }
        PassReason::Incomplete => "the page's body stopped before the insertion point".into(),
    }
}
