//! Content-Security-Policy: let the injected script run and the widget load under the
//! page's own policy, without weakening it beyond what the Messenger needs.
//!
//! For each policy that restricts scripts, the snippet is allowed by the page's nonce when it
//! has one, else by the snippet's `'sha256-…'` hash; a hash is never added where the page
//! relies on `'unsafe-inline'` (a hash would switch that off). Intercom's hosts for the
//! region (docs/intercom.md §6) are added only to directives the policy actually has, or, when a
//! directive falls back to `default-src`, to a copy of `default-src` under the directive's
//! own name (so `default-src` itself never widens).
//!
//! `style-src` is left alone: Intercom lists `'unsafe-inline'` for it, but adding that
//! would open the page to CSS injection. An app with a strict `style-src` must allow the
//! Messenger's styles itself.

use crate::intercom::IntercomHosts;

/// The directives the Messenger needs, and their fallbacks.
const SCRIPT_DIRECTIVES: [&str; 2] = ["script-src-elem", "script-src"];

/// What the policy rewrite needs to know about this page's snippet.
pub struct CspContext<'a> {
    /// `'sha256-…'` of the snippet's script text.
    pub snippet_hash: &'a str,
    /// The nonce our `<script>` carries, if one was chosen.
    pub nonce: Option<&'a str>,
    /// Hosts to allow, per directive.
    pub hosts: &'a IntercomHosts,
}

/// One directive: a lower-cased name and its source expressions, in order.
#[derive(Debug, Clone, PartialEq)]
struct Directive {
    name: String,
    sources: Vec<String>,
}

fn parse_policy(policy: &str) -> Vec<Directive> {
    let mut out: Vec<Directive> = Vec::new();
    for part in policy.split(';') {
        let mut tokens = part.split_ascii_whitespace();
        let Some(name) = tokens.next() else { continue };
        let name = name.to_ascii_lowercase();
        // The first occurrence of a directive wins; browsers ignore repeats.
        if out.iter().any(|d| d.name == name) {
            continue;
        }
        out.push(Directive {
            name,
            sources: tokens.map(str::to_string).collect(),
        });
    }
    out
}

fn render_policy(directives: &[Directive]) -> String {
    directives
        .iter()
        .map(|d| {
            if d.sources.is_empty() {
                d.name.clone()
            } else {
                format!("{} {}", d.name, d.sources.join(" "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The value of a `'nonce-…'` source (sliced safely: policies are untrusted input).
fn nonce_value(source: &str) -> Option<&str> {
    let prefix = source.get(..7)?;
    if !prefix.eq_ignore_ascii_case("'nonce-") {
        return None;
    }
    source
        .get(7..)?
        .strip_suffix('\'')
        .filter(|v| !v.is_empty())
}

fn is_nonce(source: &str) -> bool {
    nonce_value(source).is_some()
}

fn is_hash(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    lower.starts_with("'sha256-") || lower.starts_with("'sha384-") || lower.starts_with("'sha512-")
}

fn push_unique(sources: &mut Vec<String>, source: &str) {
    if !sources.iter().any(|s| s.eq_ignore_ascii_case(source)) {
        sources.push(source.to_string());
    }
}

/// The nonce of the first policy (in a header value) whose script directive has one.
pub fn find_nonce(value: &str) -> Option<String> {
    value.split(',').find_map(|policy| {
        let directives = parse_policy(policy);
        let script = SCRIPT_DIRECTIVES
            .iter()
            .chain(&["default-src"])
            .find_map(|name| directives.iter().find(|d| d.name == *name))?;
        script
            .sources
            .iter()
            .find_map(|s| nonce_value(s))
            .map(str::to_string)
    })
}

/// Rewrites a `Content-Security-Policy` (or `-Report-Only`, or `<meta>`) value, which may
/// hold several comma-separated policies.
pub fn rewrite(value: &str, ctx: &CspContext<'_>) -> String {
    value
        .split(',')
        .map(|policy| rewrite_policy(policy, ctx))
        .collect::<Vec<_>>()
        .join(", ")
}

fn rewrite_policy(policy: &str, ctx: &CspContext<'_>) -> String {
    let mut directives = parse_policy(policy);
    let default = directives.iter().find(|d| d.name == "default-src").cloned();

    // Scripts: every script directive present; if none, a script-src copied from default-src.
    let mut script_names: Vec<&str> = SCRIPT_DIRECTIVES
        .iter()
        .copied()
        .filter(|n| directives.iter().any(|d| d.name == *n))
        .collect();
    if script_names.is_empty() && default.is_some() {
        script_names.push("script-src");
    }
    for name in script_names {
        let directive = directive_or_copy(&mut directives, name, default.as_ref());
        allow_inline_snippet(&mut directive.sources, ctx);
        for host in &ctx.hosts.script {
            push_unique(&mut directive.sources, host);
        }
    }

    // Other fetch directives: frame-src falls back to child-src, then default-src.
    let frame_fallback = directives
        .iter()
        .find(|d| d.name == "child-src")
        .cloned()
        .or_else(|| default.clone());
    let extend: [(&str, &[String], Option<&Directive>); 6] = [
        ("connect-src", &ctx.hosts.connect, default.as_ref()),
        ("img-src", &ctx.hosts.img, default.as_ref()),
        ("font-src", &ctx.hosts.font, default.as_ref()),
        ("media-src", &ctx.hosts.media, default.as_ref()),
        ("frame-src", &ctx.hosts.frame, frame_fallback.as_ref()),
        // form-action has no fallback: only extended when the page sets it.
        ("form-action", &ctx.hosts.form_action, None),
    ];
    for (name, hosts, fallback) in extend {
        if directives.iter().any(|d| d.name == name) || fallback.is_some() {
            let directive = directive_or_copy(&mut directives, name, fallback);
            drop_none(&mut directive.sources);
            for host in hosts {
                push_unique(&mut directive.sources, host);
            }
        }
    }
    if let Some(child) = directives.iter_mut().find(|d| d.name == "child-src") {
        drop_none(&mut child.sources);
        for host in &ctx.hosts.frame {
            push_unique(&mut child.sources, host);
        }
    }
    render_policy(&directives)
}

/// The directive `name`, created as a copy of `fallback` (or empty) when absent.
fn directive_or_copy<'d>(
    directives: &'d mut Vec<Directive>,
    name: &str,
    fallback: Option<&Directive>,
) -> &'d mut Directive {
    let index = match directives.iter().position(|d| d.name == name) {
        Some(i) => i,
        None => {
            directives.push(Directive {
                name: name.to_string(),
                sources: fallback.map(|d| d.sources.clone()).unwrap_or_default(),
            });
            directives.len() - 1
        }
    };
    &mut directives[index]
}

/// `'none'` only means something alone; once we add a source it must go.
fn drop_none(sources: &mut Vec<String>) {
    sources.retain(|s| !s.eq_ignore_ascii_case("'none'"));
}

fn allow_inline_snippet(sources: &mut Vec<String>, ctx: &CspContext<'_>) {
    if let Some(nonce) = ctx.nonce
        && sources.iter().any(|s| nonce_value(s) == Some(nonce))
    {
        return;
    }
    let governed = sources.iter().any(|s| is_nonce(s) || is_hash(s));
    let unsafe_inline = sources
        .iter()
        .any(|s| s.eq_ignore_ascii_case("'unsafe-inline'"));
    if unsafe_inline && !governed {
        // Inline scripts are allowed; a hash would turn that off for the app's own scripts.
        return;
    }
    drop_none(sources);
    push_unique(sources, ctx.snippet_hash);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intercom::Region;

    fn ctx<'a>(hosts: &'a IntercomHosts, nonce: Option<&'a str>) -> CspContext<'a> {
        CspContext {
            snippet_hash: "'sha256-SNIPPET'",
            nonce,
            hosts,
        }
    }

    fn directive<'a>(policy: &'a str, name: &str) -> Vec<&'a str> {
        policy
            .split(';')
            .map(str::trim)
            .find_map(|d| {
                d.strip_prefix(name)
                    .filter(|rest| rest.starts_with(' ') || rest.is_empty())
            })
            .map(|rest| rest.split_whitespace().collect())
            .unwrap_or_default()
    }

    #[test]
    fn nonce_policies_keep_the_nonce_and_get_no_hash() {
        let hosts = IntercomHosts::new(Region::Us, None);
        let value = "script-src 'nonce-abc' 'strict-dynamic'; object-src 'none'; base-uri 'self'";
        assert_eq!(find_nonce(value).as_deref(), Some("abc"));
        let out = rewrite(value, &ctx(&hosts, Some("abc")));
        let script = directive(&out, "script-src");
        assert!(script.contains(&"'nonce-abc'") && script.contains(&"'strict-dynamic'"));
        assert!(!script.contains(&"'sha256-SNIPPET'"));
        assert_eq!(
            directive(&out, "object-src"),
            ["'none'"],
            "unrelated directives untouched"
        );
        assert!(out.contains("base-uri 'self'"));
    }

    #[test]
    fn hash_is_added_where_inline_is_restricted() {
        let hosts = IntercomHosts::new(Region::Eu, None);
        let out = rewrite(
            "default-src 'self'; img-src 'self' data:",
            &ctx(&hosts, None),
        );
        assert!(
            out.starts_with("default-src 'self'; img-src 'self' data:"),
            "{out}"
        );
        let script = directive(&out, "script-src");
        assert_eq!(script[0], "'self'", "copied from default-src");
        assert!(
            script.contains(&"'sha256-SNIPPET'") && script.contains(&"https://widget.intercom.io")
        );
        let connect = directive(&out, "connect-src");
        assert!(connect.contains(&"https://api-iam.eu.intercom.io"));
        assert!(!connect.contains(&"https://nexus-australia-websocket.intercom.io"));
        assert_eq!(
            directive(&out, "default-src"),
            ["'self'"],
            "default-src never widens"
        );
        assert!(
            directive(&out, "form-action").is_empty(),
            "form-action has no fallback"
        );
    }

    #[test]
    fn unsafe_inline_alone_is_not_switched_off_by_a_hash() {
        let hosts = IntercomHosts::new(Region::Us, None);
        let out = rewrite("script-src 'self' 'unsafe-inline'", &ctx(&hosts, None));
        let script = directive(&out, "script-src");
        assert!(script.contains(&"'unsafe-inline'"));
        assert!(!script.iter().any(|s| s.starts_with("'sha256-")), "{out}");
    }

    #[test]
    fn none_is_replaced_and_policies_without_script_rules_are_left_alone() {
        let hosts = IntercomHosts::new(Region::Us, Some("http://127.0.0.1:9"));
        let out = rewrite("script-src 'none'", &ctx(&hosts, None));
        let script = directive(&out, "script-src");
        assert!(!script.contains(&"'none'"));
        assert!(script.contains(&"http://127.0.0.1:9"));
        assert_eq!(
            rewrite("frame-ancestors 'none'", &ctx(&hosts, None)),
            "frame-ancestors 'none'"
        );
    }

    #[test]
    fn every_policy_in_a_list_is_rewritten() {
        let hosts = IntercomHosts::new(Region::Au, None);
        let out = rewrite(
            "script-src 'nonce-a', script-src 'self'",
            &ctx(&hosts, Some("a")),
        );
        let (first, second) = out.split_once(", ").unwrap();
        assert!(!first.contains("SNIPPET"));
        assert!(
            second.contains("'sha256-SNIPPET'"),
            "the second policy knows no nonce: {out}"
        );
    }
}
