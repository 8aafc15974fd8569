//! The inline `<script>` that sets `window.intercomSettings` and loads the widget, safe to
//! embed in any HTML page.

use std::io;

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A rendered snippet: the script's text (what a CSP hash covers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The JavaScript between `<script>` and `</script>`.
    pub script: String,
}

/// Intercom's loader for one `widget_url`, rendered once at start.
#[derive(Debug, Clone)]
pub struct Loader(String);

impl Loader {
    /// The loader that fetches the widget from `widget_url`.
    pub fn new(widget_url: &str) -> Self {
        Loader(loader(&escape_json_for_script(&Value::from(widget_url))))
    }
}

/// What one page's snippet does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Boot<'a> {
    /// Settings to boot with (`None`: no boot, e.g. a logout page).
    pub settings: Option<&'a Map<String, Value>>,
    /// Run `Intercom('shutdown')` before anything else: the user behind the browser changed
    /// or logged out.
    pub shutdown_first: bool,
    /// Fetch a fresh JWT from the proxy's endpoint before the page's one expires.
    pub refresh: Option<Refresh<'a>>,
    /// Call `Intercom('update')` on client-side navigation (history API).
    pub spa_updates: bool,
    /// JavaScript run right after the shutdown (the proxy's marker cookies: they change
    /// only once a shutdown is in the page).
    pub after_shutdown: &'a str,
}

/// The token refresh of a long-lived page.
#[derive(Debug, Clone, Copy)]
pub struct Refresh<'a> {
    /// The proxy's token endpoint.
    pub path: &'a str,
    /// Seconds until the first refresh.
    pub after_secs: u64,
    /// Whom the page booted for (the opaque marker): the endpoint refuses a token for
    /// anyone else, and the page then shuts the Messenger down.
    pub booted_for: &'a str,
}

/// `setTimeout` takes at most 2^31-1 ms (24.8 days); past it the timer fires at once.
const MAX_TIMER_SECS: u64 = 24 * 24 * 3600;

/// Intercom's loader (docs/intercom.md §1): reuse a live Intercom, else queue calls in a stub and
/// load the widget once the page has loaded. `{widget_url}` is a JSON string.
fn loader(widget_url: &str) -> String {
    format!(
        "(function(){{var w=window;var ic=w.Intercom;if(typeof ic===\"function\"){{ic('reattach_activator');ic('update',w.intercomSettings);}}\
else{{var d=document;var i=function(){{i.c(arguments);}};i.q=[];i.c=function(args){{i.q.push(args);}};w.Intercom=i;\
var l=function(){{var s=d.createElement('script');s.type='text/javascript';s.async=true;s.src={widget_url};\
var x=d.getElementsByTagName('script')[0];if(x){{x.parentNode.insertBefore(s,x);}}else{{d.head.appendChild(s);}}}};\
if(d.readyState==='complete'){{l();}}else if(w.attachEvent){{w.attachEvent('onload',l);}}else{{w.addEventListener('load',l,false);}}}}}})();"
    )
}

impl Snippet {
    /// Renders the settings assignment and Intercom's standard async loader for `widget_url`.
    pub fn render(settings: &Map<String, Value>, widget_url: &str) -> Snippet {
        Snippet::render_boot(
            &Boot {
                settings: Some(settings),
                ..Boot::default()
            },
            &Loader::new(widget_url),
        )
    }

    /// Renders what `boot` asks for. A plain boot sets `window.intercomSettings` (the widget
    /// boots from it on load). A boot after a shutdown queues `shutdown` then an explicit
    /// `boot` in the loader's stub and leaves `intercomSettings` unset, so the order holds
    /// whatever the widget does with `intercomSettings` when it loads.
    pub fn render_boot(boot: &Boot<'_>, loader: &Loader) -> Snippet {
        let loader = loader.0.as_str();
        let settings = boot.settings.map(escape_json_for_script);
        let mut script = String::with_capacity(1024);
        match (&settings, boot.shutdown_first) {
            (Some(settings), false) => {
                script.push_str("window.intercomSettings=");
                script.push_str(settings);
                script.push(';');
                script.push_str(loader);
            }
            (settings, true) => {
                script.push_str(loader);
                script.push_str("window.Intercom('shutdown');");
                script.push_str(boot.after_shutdown);
                if let Some(settings) = settings {
                    script.push_str(&format!("window.Intercom('boot',{settings});"));
                }
            }
            (None, false) => script.push_str(loader),
        }
        if let (Some(refresh), Some(_)) = (boot.refresh, &settings) {
            let path = escape_json_for_script(&Value::from(refresh.path));
            let marker = escape_json_for_script(&Value::from(refresh.booted_for));
            // 401 (logged out) or 409 (someone else logged in, in another tab): shut down.
            script.push_str(&format!(
                "(function(){{function r(){{fetch({path}+'?for='+encodeURIComponent({marker})+'\\u0026path='+encodeURIComponent(location.pathname),{{credentials:'same-origin',cache:'no-store'}})\
.then(function(x){{if(x.status===401||x.status===409){{window.Intercom('shutdown');return null;}}return x.ok?x.json():null;}})\
.then(function(j){{if(j){{window.Intercom('update',{{intercom_user_jwt:j.intercom_user_jwt}});setTimeout(r,j.refresh_in*1000);}}}})\
.catch(function(){{}});}}setTimeout(r,{}*1000);}})();",
                refresh.after_secs.min(MAX_TIMER_SECS)
            ));
        }
        if boot.spa_updates && settings.is_some() {
            script.push_str(
                "(function(){var h=window.history;if(!h||h.__ispUpdates){return;}h.__ispUpdates=1;\
var u=function(){window.Intercom('update');};['pushState','replaceState'].forEach(function(m){var o=h[m];\
h[m]=function(){var r=o.apply(this,arguments);u();return r;};});window.addEventListener('popstate',u);})();",
            );
        }
        Snippet { script }
    }

    /// `'sha256-…'` of the script, as a CSP source expression (only pages with a CSP need it).
    pub fn csp_hash(&self) -> String {
        let digest = Sha256::digest(self.script.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    }

    /// The `<script>` element, with `nonce` when the page's CSP uses one.
    pub fn html(&self, nonce: Option<&str>) -> String {
        let mut html = Vec::new();
        self.write_html(nonce, &mut html);
        // Built from `&str`s only.
        String::from_utf8(html)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends [`Snippet::html`] to `out`, without building it on its own first.
    pub fn write_html(&self, nonce: Option<&str>, out: &mut Vec<u8>) {
        out.reserve(self.script.len() + 64);
        match nonce {
            Some(nonce) => {
                out.extend_from_slice(b"<script nonce=\"");
                out.extend_from_slice(escape_attribute(nonce).as_bytes());
                out.extend_from_slice(b"\">");
            }
            None => out.extend_from_slice(b"<script>"),
        }
        out.extend_from_slice(self.script.as_bytes());
        out.extend_from_slice(b"</script>");
    }
}

/// JSON that cannot end an inline `<script>` or break a JS string, in pure ASCII: `<`, `>`,
/// `&` and every non-ASCII character become `\uXXXX` escapes (valid JSON and JavaScript).
///
/// ASCII only, because the script is inserted into pages of any ASCII-compatible charset
/// (lol_html would write an unmappable character as `&#NNNN;`, which a script takes
/// literally) and its CSP hash must match the bytes the browser sees. Without `<` and `&`
/// the script is also well-formed XML, for XHTML pages.
pub fn escape_json_for_script<T: Serialize + ?Sized>(value: &T) -> String {
    let mut bytes = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, ScriptSafe);
    if value.serialize(&mut serializer).is_err() {
        // JSON values and maps of them always serialize; keep the output valid regardless.
        return "null".to_string();
    }
    // All ASCII (see `ScriptSafe`), so this never falls back.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// serde_json's compact output, with the script-unsafe characters of strings (and keys)
/// escaped as they are written.
struct ScriptSafe;

impl serde_json::ser::Formatter for ScriptSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut clean = 0;
        // Byte by byte: a JWT or an id is all plain ASCII, and a non-ASCII byte found this
        // way always starts a character (everything before it was ASCII or skipped whole).
        while let Some(found) = bytes[clean..]
            .iter()
            .position(|&b| !b.is_ascii() || matches!(b, b'<' | b'>' | b'&'))
        {
            let at = clean + found;
            writer.write_all(&bytes[clean..at])?;
            let Some(c) = fragment.get(at..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            clean = at + c.len_utf8();
        }
        writer.write_all(&bytes[clean..])
    }
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_script_is_ascii_and_well_formed_xml_text() {
        let mut settings = Map::new();
        settings.insert("name".into(), json!("Zoë 😀 <b>&"));
        let s = Snippet::render(&settings, "https://widget.intercom.io/widget/abc");
        assert!(s.script.is_ascii());
        assert!(
            !s.script.contains('<') && !s.script.contains('&'),
            "{}",
            s.script
        );
        assert!(
            s.script
                .contains("Zo\\u00eb \\ud83d\\ude00 \\u003cb\\u003e\\u0026"),
            "{}",
            s.script
        );
    }

    #[test]
    fn hostile_values_cannot_close_the_script() {
        let v = json!({"name": "</script><script>alert(1)</script>", "x": "a&b\u{2028}\u{2029}"});
        let out = escape_json_for_script(&v);
        assert!(!out.contains('<') && !out.contains('>') && !out.contains('&'));
        assert!(!out.contains('\u{2028}') && !out.contains('\u{2029}'));
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v, "the escapes must decode to the same JSON");
    }

    #[test]
    fn non_ascii_becomes_utf16_escapes_between_plain_runs() {
        let v = json!({"n": "é<a>😀z&"});
        assert_eq!(
            escape_json_for_script(&v),
            r#"{"n":"\u00e9\u003ca\u003e\ud83d\ude00z\u0026"}"#
        );
    }

    #[test]
    fn hash_covers_exactly_the_script_text() {
        let mut settings = Map::new();
        settings.insert("app_id".into(), json!("abc"));
        let s = Snippet::render(&settings, "https://widget.intercom.io/widget/abc");
        assert!(
            s.script
                .starts_with("window.intercomSettings={\"app_id\":\"abc\"};")
        );
        assert!(
            s.script
                .contains("s.src=\"https://widget.intercom.io/widget/abc\"")
        );
        let expected =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.script.as_bytes()));
        assert_eq!(s.csp_hash(), format!("'sha256-{expected}'"));
        assert_eq!(
            s.html(Some("n\"1")),
            format!("<script nonce=\"n&quot;1\">{}</script>", s.script)
        );
    }
}
