//! Step 5's Content-Security-Policy lines: what the layer added to the page's policies
//! (headers and `<meta>`), found by comparing the app's policy with the one that left, and
//! whether the snippet may run under the result. Reading only: the rewrite is the layer's.

/// A policy's directives: lower-cased names and their sources, the first of each name.
fn parse(policy: &str) -> Vec<(String, Vec<&str>)> {
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    for part in policy.split(';') {
        let mut tokens = part.split_ascii_whitespace();
        let Some(name) = tokens.next() else { continue };
        let name = name.to_ascii_lowercase();
        // Browsers ignore a repeated directive.
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, tokens.collect()));
        }
    }
    out
}

/// What `after` allows that `before` did not, one directive a line (`script-src:
/// 'sha256-…' https://…`); empty when nothing was added.
pub(super) fn added(before: &str, after: &str) -> Vec<String> {
    let before = parse(before);
    parse(after)
        .into_iter()
        .filter_map(|(name, sources)| {
            let had: &[&str] = before
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(&[], |(_, s)| s.as_slice());
            let new: Vec<String> = sources
                .iter()
                .filter(|s| !had.contains(s))
                .map(|s| s.to_string())
                .collect();
            match (new.is_empty(), before.iter().any(|(n, _)| *n == name)) {
                (true, _) => None,
                (false, true) => Some(format!("{name}: {}", new.join(" "))),
                // A directive that fell back to default-src gets a copy of it, plus hosts.
                (false, false) => Some(format!(
                    "{name} (new: a copy of default-src, plus): {}",
                    new.join(" ")
                )),
            }
        })
        .collect()
}

/// Whether the snippet (`'sha256-…'` `hash`, carrying `nonce` if any) may run under
/// `policy`, and by which source.
pub(super) fn snippet_allowed(policy: &str, nonce: Option<&str>, hash: &str) -> String {
    let directives = parse(policy);
    let Some((name, sources)) = ["script-src-elem", "script-src", "default-src"]
        .iter()
        .find_map(|want| directives.iter().find(|(n, _)| n == want))
    else {
        return "scripts are not restricted: the snippet runs".to_string();
    };
    let has = |needle: &str| sources.iter().any(|s| s.eq_ignore_ascii_case(needle));
    let nonced = nonce.is_some_and(|n| sources.iter().any(|s| *s == format!("'nonce-{n}'")));
    let hashed = sources.contains(&hash);
    let keyed = sources.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        s.starts_with("'nonce-") || s.starts_with("'sha")
    });
    if nonced {
        format!("{name}: the snippet carries the page's nonce: it runs")
    } else if hashed {
        format!("{name}: the snippet's hash is listed: it runs")
    } else if has("'unsafe-inline'") && !keyed {
        format!("{name}: 'unsafe-inline' lets it run")
    } else {
        format!("{name}: the snippet is NOT allowed (no nonce, hash or 'unsafe-inline' for it)")
    }
}

/// A note when the policy keeps inline styles out: the proxy leaves `style-src` alone.
pub(super) fn style_note(policy: &str) -> Option<String> {
    let directives = parse(policy);
    let (name, sources) = ["style-src-elem", "style-src", "default-src"]
        .iter()
        .find_map(|want| directives.iter().find(|(n, _)| n == want))?;
    let inline = sources
        .iter()
        .any(|s| s.eq_ignore_ascii_case("'unsafe-inline'"));
    (!inline).then(|| {
        format!(
            "{name} allows no inline styles, and the proxy leaves it alone (adding \
             'unsafe-inline' would open the page to CSS injection): the app must allow the \
             Messenger's styles"
        )
    })
}

/// The policies of the page's `<meta http-equiv="Content-Security-Policy">` elements, in
/// order (a display scan: the layer's own parser is lol_html).
pub(super) fn meta_policies(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut policies = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("<meta").map(|i| from + i) {
        let end = lower[at..].find('>').map_or(lower.len(), |i| at + i);
        let attributes = attributes(&html[at + 5..end]);
        from = end;
        let equiv = attributes
            .iter()
            .any(|(n, v)| n == "http-equiv" && v.eq_ignore_ascii_case("content-security-policy"));
        if let (true, Some((_, content))) = (equiv, attributes.iter().find(|(n, _)| n == "content"))
        {
            policies.push(
                content
                    .replace("&quot;", "\"")
                    .replace("&#39;", "'")
                    .replace("&amp;", "&"),
            );
        }
    }
    policies
}

/// A tag's attributes: lower-cased names, values unquoted.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (v, remaining) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &after[1..];
                    let close = body.find(q).unwrap_or(body.len());
                    (&body[..close], body.get(close + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after
                        .find(|c: char| c.is_ascii_whitespace())
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = v.to_string();
            rest = remaining;
        }
        if !name.is_empty() {
            out.push((name, value));
        }
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additions_are_listed_per_directive() {
        let before = "default-src 'self'; script-src 'self' 'nonce-abc'";
        let after = "default-src 'self'; script-src 'self' 'nonce-abc' https://widget.intercom.io; \
                     connect-src 'self' https://api-iam.intercom.io";
        assert_eq!(
            added(before, after),
            [
                "script-src: https://widget.intercom.io",
                "connect-src (new: a copy of default-src, plus): 'self' https://api-iam.intercom.io"
            ]
        );
        assert!(added(before, before).is_empty());
        assert!(snippet_allowed(after, Some("abc"), "'sha256-x'").contains("nonce"));
        assert!(snippet_allowed("script-src 'self'", None, "'sha256-x'").contains("NOT"));
        assert!(snippet_allowed("img-src *", None, "'sha256-x'").contains("not restricted"));
        assert!(style_note("default-src 'self'").is_some());
    }

    #[test]
    fn meta_policies_are_found() {
        let html = r#"<head><meta charset="utf-8"><META HTTP-EQUIV='Content-Security-Policy' content="script-src 'self'"></head>"#;
        assert_eq!(meta_policies(html), ["script-src 'self'"]);
        assert!(meta_policies("<meta").is_empty());
    }
}
