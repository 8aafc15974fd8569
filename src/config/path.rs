//! The request path as the app most likely routes it, for `[[routes]]` and `[logout] paths`.
//!
//! A path can name the same page in many spellings: `/%61dmin/panel`, `/admin%2Fpanel`,
//! `/admin;x/panel` (Tomcat and Spring drop `;` parameters), `//admin/panel`,
//! `/x/../admin/panel`, `/admin\panel`. Rules are matched on the path as sent and on this
//! form; the stricter outcome wins (see `Routes::matching` and `Logout::is_logout_path`).

use std::borrow::Cow;

/// `path` normalised for matching: `;` parameters dropped from each segment (as sent, as
/// Tomcat does), every `%XX` decoded once (`%2F` too: many apps decode it before routing),
/// `\` read as `/`, empty and `.` segments dropped and `..` resolved (never above the root).
/// Case is kept: paths are case-sensitive.
///
/// Borrowed, without allocating, when there is nothing to normalise (no `%`, `;`, `\`, `//`
/// or `/.`): the usual path.
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    if needs_normalizing(path.as_bytes()) {
        Cow::Owned(normalize(path.as_bytes()))
    } else {
        Cow::Borrowed(path)
    }
}

fn needs_normalizing(path: &[u8]) -> bool {
    memchr::memchr3(b'%', b';', b'\\', path).is_some()
        || memchr::memchr_iter(b'/', path).any(|at| matches!(path.get(at + 1), Some(b'/' | b'.')))
}

fn normalize(path: &[u8]) -> String {
    // Parameters and escapes: one pass over the bytes as sent.
    let mut decoded = Vec::with_capacity(path.len());
    let mut at = 0;
    while at < path.len() {
        match path[at] {
            b';' => {
                at = memchr::memchr(b'/', &path[at..]).map_or(path.len(), |end| at + end);
            }
            b'%' => match (
                path.get(at + 1).and_then(hex),
                path.get(at + 2).and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    decoded.push(high << 4 | low);
                    at += 3;
                }
                _ => {
                    decoded.push(b'%');
                    at += 1;
                }
            },
            b'\\' => {
                decoded.push(b'/');
                at += 1;
            }
            other => {
                decoded.push(other);
                at += 1;
            }
        }
    }
    // `\` decoded from `%5C` is a separator too.
    for b in &mut decoded {
        if *b == b'\\' {
            *b = b'/';
        }
    }
    // Segments: RFC 3986's remove_dot_segments, empty segments dropped.
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded.split(|&b| b == b'/') {
        trailing_slash = matches!(segment, b"" | b"." | b"..");
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            name => segments.push(name),
        }
    }
    let mut out = Vec::with_capacity(decoded.len() + 1);
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if segments.is_empty() || trailing_slash {
        out.push(b'/');
    }
    match String::from_utf8(out) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_borrowed() {
        for path in [
            "/",
            "/admin/panel",
            "/a.b/c-d_e~f",
            "/file.tar.gz",
            "/admin/",
        ] {
            let n = normalize_path(path);
            assert!(matches!(n, Cow::Borrowed(_)), "{path}");
            assert_eq!(n, path);
        }
        // `/.` is looked at, and kept when it is no dot segment.
        assert_eq!(normalize_path("/.well-known/x"), "/.well-known/x");
    }

    #[test]
    fn spellings_of_a_path_normalise_to_it() {
        for (path, want) in [
            ("/%61dmin/panel", "/admin/panel"),
            ("/%61%64%6D%69%6e/panel", "/admin/panel"),
            ("/admin%2fpanel", "/admin/panel"),
            ("/admin%2Fpanel", "/admin/panel"),
            ("/admin;x/panel", "/admin/panel"),
            ("/admin;jsessionid=1;a=b/panel;v=2", "/admin/panel"),
            ("/admin/panel;", "/admin/panel"),
            ("//admin/panel", "/admin/panel"),
            ("/admin///panel", "/admin/panel"),
            ("/./admin/panel", "/admin/panel"),
            ("/x/../admin/panel", "/admin/panel"),
            ("/x/y/../../admin/panel", "/admin/panel"),
            ("/../../admin/panel", "/admin/panel"),
            ("/x/%2e%2e/admin/panel", "/admin/panel"),
            ("/x/%2E./admin/panel", "/admin/panel"),
            ("/x%2F..%2Fadmin/panel", "/admin/panel"),
            ("/admin\\panel", "/admin/panel"),
            ("/admin%5Cpanel", "/admin/panel"),
            ("/x/..;/admin/panel", "/admin/panel"),
            ("/admin/panel/.", "/admin/panel/"),
            ("/admin/panel/..", "/admin/"),
            ("/admin/", "/admin/"),
            ("/admin//", "/admin/"),
            ("/..", "/"),
            ("//", "/"),
            ("/Admin%20Panel", "/Admin Panel"),
            ("/%ZZ/%4", "/%ZZ/%4"),
            ("/%3B/x", "/;/x"),
            ("/%FF", "/\u{FFFD}"),
        ] {
            assert_eq!(normalize_path(path), want, "{path}");
        }
    }

    #[test]
    fn one_decoding_only() {
        assert_eq!(normalize_path("/%2561dmin"), "/%61dmin");
    }
}
