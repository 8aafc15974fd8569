//! Step 5: the app's answer as the injection layer received it (status, type, charset,
//! coding, whether it is a page the snippet can go into, its CSP) and the page as it left
//! (the policies the layer adjusted, where the snippet went, the headers it set).

use std::io::Read;

use http::HeaderMap;
use http::header::{self, HeaderName};

use super::Report;
use super::capture::Logged;
use super::csp;
use super::exchange::Observed;
use crate::inject::decide::RequestFacts;
use crate::inject::page_check;
use crate::intercom::Snippet;

/// Decoded bytes kept for inspection, at most.
const DECODED_MAX: u64 = 32 << 20;

/// The start of every snippet the layer writes: a settings assignment, or Intercom's loader
/// (first when the snippet shuts the Messenger down).
const SNIPPET_STARTS: [&str; 2] = [
    "window.intercomSettings=",
    "(function(){var w=window;var ic=w.Intercom;",
];

/// The bodies as text, decoded from their content coding.
pub(super) struct Texts {
    /// The app's page, as the layer received it.
    pub(super) app: Option<String>,
    /// The page as it left the layer.
    pub(super) sent: String,
    /// The snippet in the page that left, when the layer put one in.
    pub(super) snippet: Option<Inserted>,
}

/// Where the snippet went, and what it is.
pub(super) struct Inserted {
    /// The script between `<script…>` and `</script>`.
    pub(super) script: String,
    /// The nonce its tag carries.
    pub(super) nonce: Option<String>,
    /// "before </head>", "at the start of <body>", "at the end of the document"…
    pub(super) placement: String,
    /// 1-based line and byte offset of its `<script`.
    pub(super) line: usize,
    pub(super) offset: usize,
}

impl Texts {
    pub(super) fn of(observed: &Observed) -> Texts {
        let sent = decode(&observed.body, &observed.headers);
        let snippet = match observed.injection {
            Some(Ok(())) => find_snippet(&sent),
            _ => None,
        };
        Texts {
            app: observed
                .app
                .as_ref()
                .map(|app| decode(&app.body, &app.headers)),
            sent,
            snippet,
        }
    }
}

/// The body as text (lossy: only ASCII markers are searched), decoded from its
/// `Content-Encoding` when it is one the proxy reads.
fn decode(body: &[u8], headers: &HeaderMap) -> String {
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let mut out = Vec::new();
    // A body cut at the kept size ends in a decoding error: what came before is kept.
    let _ = match coding.as_deref() {
        Some("gzip" | "x-gzip") => flate2::read::MultiGzDecoder::new(body)
            .take(DECODED_MAX)
            .read_to_end(&mut out),
        Some("deflate") => {
            let zlib = flate2::read::ZlibDecoder::new(body)
                .take(DECODED_MAX)
                .read_to_end(&mut out);
            if zlib.is_err() && out.is_empty() {
                flate2::read::DeflateDecoder::new(body)
                    .take(DECODED_MAX)
                    .read_to_end(&mut out)
            } else {
                zlib
            }
        }
        Some("br") => brotli::Decompressor::new(body, 4096)
            .take(DECODED_MAX)
            .read_to_end(&mut out),
        _ => {
            out.extend_from_slice(body);
            Ok(body.len())
        }
    };
    String::from_utf8_lossy(&out).into_owned()
}

/// The layer's `<script>` in `page`, and where it sits.
fn find_snippet(page: &str) -> Option<Inserted> {
    let at = SNIPPET_STARTS.iter().filter_map(|s| page.find(s)).min()?;
    let start = page[..at].rfind("<script")?;
    let tag = &page[start..at];
    // The script must begin right after its own tag.
    if !tag.ends_with('>') || tag[1..].contains('<') {
        return None;
    }
    let end = at + page[at..].find("</script>")?;
    let nonce = tag
        .split_once("nonce=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(nonce, _)| nonce.to_string());
    let after = page[end + "</script>".len()..]
        .trim_start()
        .to_ascii_lowercase();
    let before = page[..start].trim_end();
    let last_tag = before.rfind('<').map(|i| before[i..].to_ascii_lowercase());
    let placement = if after.starts_with("</head") {
        "before </head>".to_string()
    } else if last_tag.is_some_and(|t| t.starts_with("<body") && t.ends_with('>')) {
        "at the start of <body>".to_string()
    } else if after.is_empty() {
        "at the end of the document".to_string()
    } else {
        "inside the page".to_string()
    };
    Some(Inserted {
        script: page[at..end].to_string(),
        nonce,
        placement,
        line: page[..start].matches('\n').count() + 1,
        offset: start,
    })
}

/// Step 5.
pub(super) fn response(
    report: &mut Report<'_>,
    observed: &Observed,
    texts: &Texts,
    logged: &[Logged],
    facts: &RequestFacts<'_>,
) {
    report.step("The app's answer");
    let Some(app) = &observed.app else {
        report.line(match facts.token_path {
            true => format!(
                "not forwarded: the proxy answered the token endpoint itself: {}",
                observed.status
            ),
            false => format!(
                "not forwarded: the proxy answered {} itself",
                observed.status
            ),
        });
        proxy_logs(report, logged);
        return;
    };
    let failed = logged
        .iter()
        .find(|e| e.from("proxy") && e.field("fault").is_some());
    if let Some(event) = failed {
        // The forwarder's own short answer: nothing of the app's to describe.
        report.line(format!(
            "the app did not answer ({}): the proxy answered {} itself",
            event.field("error").unwrap_or("?"),
            app.status
        ));
        return;
    }
    report.line(format!(
        "status: {} (head after {:.1} ms)",
        app.status,
        app.elapsed.as_secs_f64() * 1000.0
    ));
    let value = |name: &HeaderName| {
        app.headers.get(name).map_or("(none)".to_string(), |v| {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        })
    };
    let content_type = value(&header::CONTENT_TYPE);
    report.line(format!("content-type: {content_type}"));
    let charset = content_type.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_string())
    });
    report.line(format!(
        "charset: {}",
        charset.unwrap_or_else(|| "(none given: UTF-8)".to_string())
    ));
    report.line(format!(
        "content-encoding: {}",
        value(&header::CONTENT_ENCODING)
    ));
    if let Some(sent) = &app.accept_encoding {
        report.line(format!("accept-encoding the app was sent: {sent}"));
    }
    report.line(match page_check(app.status, &app.headers) {
        Ok(()) => "page: a page the snippet can go into (2xx HTML, charset and coding readable)"
            .to_string(),
        Err(reason) => format!("page: not one the snippet can go into: {}", reason.label()),
    });
    policies(report, app, observed, texts);
    match &texts.snippet {
        Some(s) => report.line(format!(
            "snippet: inserted {} (line {}, byte {}){}",
            s.placement,
            s.line,
            s.offset,
            if s.nonce.is_some() {
                ", with the page's nonce"
            } else {
                ""
            }
        )),
        None => report.line("snippet: not in the page"),
    }
    let set: Vec<String> = observed
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| {
            !app.headers
                .get_all(header::SET_COOKIE)
                .iter()
                .any(|a| a.as_bytes() == v.as_bytes())
        })
        .filter_map(|v| v.split('=').next().map(|n| n.trim().to_string()))
        .collect();
    if !set.is_empty() {
        report.line(format!(
            "cookies the proxy sets (names only): {}",
            set.join(", ")
        ));
    }
    for name in [header::CACHE_CONTROL, header::VARY] {
        let (before, after) = (app.headers.get(&name), observed.headers.get(&name));
        if let (Some(after), true) = (after, before != after) {
            report.line(format!(
                "{name} set by the proxy: {}",
                String::from_utf8_lossy(after.as_bytes())
            ));
        }
    }
    if let Some(error) = &observed.body_error {
        report.line(format!("the page's body stopped early: {error}"));
    }
    proxy_logs(report, logged);
}

/// The CSP headers and `<meta>` policies: what the layer added, and whether the snippet
/// runs under them.
fn policies(
    report: &mut Report<'_>,
    app: &super::exchange::AppAnswer,
    observed: &Observed,
    texts: &Texts,
) {
    let hash = texts.snippet.as_ref().map(|s| {
        Snippet {
            script: s.script.clone(),
        }
        .csp_hash()
    });
    let nonce = texts.snippet.as_ref().and_then(|s| s.nonce.as_deref());
    let mut any = false;
    let mut judge = |report: &mut Report<'_>, what: &str, before: &str, after: &str| {
        any = true;
        let added = csp::added(before, after);
        if hash.is_none() {
            // No snippet went in: the policy is the app's, and nothing needs to run under it.
            report.line(format!(
                "{what}: present, left as the app sent it (no snippet)"
            ));
            return;
        }
        if added.is_empty() {
            report.line(format!("{what}: unchanged"));
        } else {
            report.line(format!("{what}: the proxy added"));
            for line in added {
                report.line(format!("  {line}"));
            }
        }
        if let Some(hash) = &hash {
            report.line(format!(
                "  snippet: {}",
                csp::snippet_allowed(after, nonce, hash)
            ));
        }
        if let Some(note) = csp::style_note(after) {
            report.line(format!("  note: {note}"));
        }
    };
    for name in [
        "content-security-policy",
        "content-security-policy-report-only",
    ] {
        let before: Vec<&str> = app
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let after: Vec<&str> = observed
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        for (i, after) in after.iter().enumerate() {
            let before = before.get(i).copied().unwrap_or_default();
            judge(report, &format!("{name} header"), before, after);
        }
    }
    let before = texts
        .app
        .as_deref()
        .map(csp::meta_policies)
        .unwrap_or_default();
    for (i, after) in csp::meta_policies(&texts.sent).iter().enumerate() {
        let before = before.get(i).map(String::as_str).unwrap_or_default();
        judge(report, "<meta> Content-Security-Policy", before, after);
    }
    if !any {
        report.line("CSP: none (header or <meta>): nothing to adjust");
    }
}

/// What the proxy's layers logged on the way (the identity's lines were shown in step 3).
fn proxy_logs(report: &mut Report<'_>, logged: &[Logged]) {
    for event in logged.iter().filter(|e| !e.from("identity")) {
        report.line(format!("log {}: {}", event.level, event.line()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_is_found_where_it_went() {
        let page = "<html><head><title>x</title>\n<script nonce=\"n1\">window.intercomSettings={};(function(){var w=window;var ic=w.Intercom;})();</script></head><body></body></html>";
        let found = find_snippet(page).unwrap();
        assert_eq!(found.placement, "before </head>");
        assert_eq!((found.line, found.nonce.as_deref()), (2, Some("n1")));
        let body = "<body class=a><script>(function(){var w=window;var ic=w.Intercom;})();window.Intercom('shutdown');</script><p>x</p>";
        assert_eq!(
            find_snippet(body).unwrap().placement,
            "at the start of <body>"
        );
        assert!(find_snippet("<p>window.intercomSettings=</p>").is_none());
    }
}
