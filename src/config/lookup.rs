//! `[session.lookup]`: after any resolver finds a user id, that user's record, from one SQL
//! query or one HTTP GET. Reachable from `[session.fields]` under `/lookup`.

use super::network::http_url;
use super::php::database_url;
use super::reader::Section;

pub(super) const LOOKUP_KEYS: &[&str] = &["url", "query"];

/// Where the user's record comes from. No `Debug`: a URL may carry a password.
#[derive(Clone)]
pub enum LookupConfig {
    /// One query, the user id its one bound parameter.
    Sql {
        /// `postgres://` or `mysql://` URL.
        url: String,
        /// The query (`$1` or `?` for the user id).
        query: String,
    },
    /// `GET` this URL, `{user_id}` replaced by the percent-encoded id; a JSON object back.
    Http {
        /// The URL template.
        url: String,
    },
}

pub(super) fn read_lookup(mut s: Section<'_>) -> Option<LookupConfig> {
    let url = s.required_string(
        "url",
        "\"postgres://app@127.0.0.1/app\" or \"http://127.0.0.1:3000/users/{user_id}\"",
    );
    let lookup = match url {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            if s.has("query") {
                let _ = s.string("query");
                s.issue(
                    "query",
                    "only for a database url; an http(s) url is a GET of that URL",
                );
            }
            if !url.contains("{user_id}") {
                s.issue(
                    "url",
                    "an http(s) lookup URL needs {user_id} where the id goes",
                );
                None
            } else {
                // Checked with a stand-in id: the template itself is not a URL.
                http_url(&s, "url", &url.replace("{user_id}", "1"))
                    .map(|_| LookupConfig::Http { url })
            }
        }
        Some(url) => {
            let url = database_url(&s, url);
            let placeholder = url.as_deref().map(|u| match u.split("://").next() {
                Some("postgres" | "postgresql") => "$1",
                _ => "?",
            });
            let query =
                s.required_string("query", "\"SELECT email, name FROM users WHERE id = $1\"");
            if let (Some(q), Some(p)) = (&query, placeholder)
                && !q.contains(p)
            {
                s.issue(
                    "query",
                    format!("query has no {p} parameter for the user id"),
                );
                None
            } else {
                Some(LookupConfig::Sql {
                    url: url?,
                    query: query?,
                })
            }
        }
        None => None,
    };
    s.finish();
    lookup
}
