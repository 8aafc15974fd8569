//! `[[routes]]` (per-path toggles, globs compiled once) and `[logout]`.

use std::borrow::Cow;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::{Map, Value as Json};

use super::path::normalize_path;
use super::reader::{Section, describe};

pub(super) const ROUTE_KEYS: &[&str] = &["path", "inject", "attributes"];
pub(super) const LOGOUT_KEYS: &[&str] = &["paths", "detect_cookie_clear"];

/// What applies to the requests of one route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Whether pages on this route may get the snippet.
    pub inject: bool,
    /// Extra static custom attributes, signed into the JWT.
    pub attributes: Map<String, Json>,
}

/// The `[[routes]]` table: first match wins; unmatched paths get the default route.
#[derive(Debug, Clone)]
pub struct Routes {
    globs: GlobSet,
    /// One per glob, in order.
    rules: Vec<Rule>,
    default: Route,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone)]
struct Rule {
    /// The glob as written, for the start-up summary.
    pattern: String,
    route: Route,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            globs: GlobSet::empty(),
            rules: Vec::new(),
            default: Route {
                inject: true,
                attributes: Map::new(),
            },
        }
    }
}

impl Routes {
    /// The route that applies to a request path.
    ///
    /// The path is matched as sent and as the app most likely routes it
    /// ([`normalize_path`]: `/%61dmin`, `/admin%2Fx`, `/admin;x/y`, `//admin`, `/x/../admin`
    /// are `/admin…`). When the two forms match different rules, the stricter wins: one that
    /// keeps the snippet out beats one that lets it in; between two that let it in, the
    /// normalised form's rule (the page the app serves) applies, else the one as sent.
    pub fn matching(&self, path: &str) -> &Route {
        self.matching_rule(path).1
    }

    /// [`matching`](Self::matching), with the glob of the `[[routes]]` rule that applies
    /// (`None`: no rule matched, the default route applies), for `explain`.
    pub fn matching_rule(&self, path: &str) -> (Option<&str>, &Route) {
        if self.rules.is_empty() {
            return (None, &self.default);
        }
        let as_sent = self.first_match(path);
        let normalized = match normalize_path(path) {
            Cow::Borrowed(_) => None,
            Cow::Owned(normalized) if as_sent.is_none_or(|rule| rule.route.inject) => {
                self.first_match(&normalized)
            }
            Cow::Owned(_) => None,
        };
        match normalized.or(as_sent) {
            Some(rule) => (Some(&rule.pattern), &rule.route),
            None => (None, &self.default),
        }
    }

    /// The first rule matching `path`.
    fn first_match(&self, path: &str) -> Option<&Rule> {
        // GlobSet returns match indices in ascending order, so the first is the first rule.
        self.globs
            .matches(path)
            .first()
            .and_then(|&i| self.rules.get(i))
    }

    /// One line for the start-up summary: `/admin/** off, /billing/** on (+section), others
    /// on`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .rules
            .iter()
            .map(|Rule { pattern, route }| {
                let state = if route.inject { "on" } else { "off" };
                if route.attributes.is_empty() {
                    format!("{pattern} {state}")
                } else {
                    let keys: Vec<&str> = route.attributes.keys().map(String::as_str).collect();
                    format!("{pattern} {state} (+{})", keys.join(", +"))
                }
            })
            .collect();
        parts.push(if parts.is_empty() {
            "every path on".to_string()
        } else {
            "others on".to_string()
        });
        parts.join(", ")
    }
}

/// `[logout]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogoutConfig {
    /// Request paths whose responses are logouts.
    pub paths: Vec<String>,
    /// Whether a response expiring the session cookie is a logout too.
    pub detect_cookie_clear: bool,
}

pub(super) fn read_logout(section: Option<Section<'_>>) -> Option<LogoutConfig> {
    let mut config = LogoutConfig {
        paths: vec!["/logout".into()],
        detect_cookie_clear: true,
    };
    let Some(mut s) = section else {
        return Some(config);
    };
    let mut ok = true;
    if let Some(paths) = s.string_list("paths") {
        for (i, p) in paths.iter().enumerate() {
            if !p.starts_with('/') {
                s.issue(&format!("paths[{i}]"), format!("{p:?} must start with '/'"));
                ok = false;
            }
        }
        config.paths = paths;
    }
    if let Some(b) = s.bool("detect_cookie_clear") {
        config.detect_cookie_clear = b;
    }
    s.finish();
    ok.then_some(config)
}

pub(super) fn read_routes(sections: Vec<Section<'_>>, root: &Section<'_>) -> Option<Routes> {
    let mut builder = GlobSetBuilder::new();
    let mut rules = Vec::new();
    let mut ok = true;
    for mut s in sections {
        let path = s.required_string("path", "\"/admin/**\"");
        let inject = s.bool("inject").unwrap_or(true);
        let attributes = read_attributes(&mut s);
        let glob = path.as_ref().and_then(|p| {
            if !p.starts_with('/') {
                s.issue(
                    "path",
                    format!("{p:?} must start with '/' (it is matched against the request path)"),
                );
                return None;
            }
            // literal_separator: `*` stays within one path segment, `**` crosses them.
            match GlobBuilder::new(p).literal_separator(true).build() {
                Ok(g) => Some(g),
                Err(e) => {
                    s.issue("path", format!("invalid glob {p:?}: {}", e.kind()));
                    None
                }
            }
        });
        s.finish();
        match (glob, attributes, path) {
            (Some(glob), Some(attributes), Some(pattern)) => {
                builder.add(glob);
                rules.push(Rule {
                    pattern,
                    route: Route { inject, attributes },
                });
            }
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    match builder.build() {
        Ok(globs) => Some(Routes {
            globs,
            rules,
            ..Routes::default()
        }),
        Err(e) => {
            root.issue("routes", format!("cannot compile the route globs: {e}"));
            None
        }
    }
}

fn read_attributes(s: &mut Section<'_>) -> Option<Map<String, Json>> {
    let Some(table) = s.raw_table("attributes") else {
        return Some(Map::new());
    };
    let mut out = Map::new();
    let mut ok = true;
    for (key, value) in table {
        let json = match value {
            toml::Value::String(v) => Json::String(v),
            toml::Value::Integer(i) => Json::from(i),
            toml::Value::Float(f) => Json::from(f),
            toml::Value::Boolean(b) => Json::Bool(b),
            other => {
                s.issue(
                    &format!("attributes.{key}"),
                    format!(
                        "expected a string, number or boolean, found {}",
                        describe(&other)
                    ),
                );
                ok = false;
                continue;
            }
        };
        if matches!(key.as_str(), "user_id" | "email" | "iat" | "exp") {
            s.issue(
                &format!("attributes.{key}"),
                format!("{key:?} is reserved for the user's own claims"),
            );
            ok = false;
            continue;
        }
        out.insert(key, json);
    }
    ok.then_some(out)
}
