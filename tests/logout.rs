//! Session-leak protection, with a cookie jar like a browser's: every logout shape leaves no
//! Intercom session, and the next user never boots with the previous user's state.
#![cfg(feature = "server")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::json;

struct Visit {
    status: StatusCode,
    headers: HeaderMap,
    page: String,
}

/// A request as a browser makes it, updating the jar from the answer.
async fn visit(proxy: &Proxy, jar: &mut Jar, method: Method, path: &str) -> Visit {
    let mut req = Request::builder()
        .method(method)
        .uri(proxy.url(path))
        .header("accept", "text/html");
    if !jar.is_empty() {
        req = req.header("cookie", jar.header());
    }
    let response = client().request(req.body(empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    jar.absorb(&headers);
    let page = String::from_utf8_lossy(&body_bytes(response.into_body()).await).into_owned();
    jar.run_scripts(&page);
    Visit {
        status,
        headers,
        page,
    }
}

/// A marker cookie's value without its signature: what the page itself knows.
fn unsigned(marker: &str) -> &str {
    marker.rsplit_once('.').map_or(marker, |(value, _)| value)
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn expires_intercom_session(headers: &HeaderMap) -> bool {
    set_cookies(headers)
        .iter()
        .any(|c| c.starts_with("intercom-session-testapp1=;") && c.contains("Max-Age=0"))
}

/// An app with a login that sets the session cookie, logouts of every shape, and pages.
async fn app() -> Upstream {
    upstream(|req| async move {
        let path = req.uri().path().to_string();
        let html = |body: &str| {
            let mut r = Response::new(full(format!("<html><head><title>t</title></head><body>{body}</body></html>")));
            r.headers_mut().insert("content-type", "text/html".parse().unwrap());
            r
        };
        let clear = "session=; Path=/; Max-Age=0";
        let mut r = match path.as_str() {
            p if p.starts_with("/login/") => {
                let user = p.trim_start_matches("/login/");
                let token = session_jwt(json!({"sub": user, "email": format!("{user}@example.com"), "exp": now_secs() + 3600}));
                let mut r = Response::new(empty());
                *r.status_mut() = StatusCode::SEE_OTHER;
                r.headers_mut().insert("location", "/".parse().unwrap());
                r.headers_mut().insert("set-cookie", format!("session={token}; Path=/; HttpOnly").parse().unwrap());
                return r;
            }
            "/logout" => {
                // Logout page rendered in place (HTML).
                let mut r = html("<p>You are logged out</p>");
                r.headers_mut().insert("set-cookie", clear.parse().unwrap());
                r
            }
            "/users/sign_out" => {
                // Logout by redirect (302 for GET, 303 for POST).
                let mut r = Response::new(empty());
                *r.status_mut() = if req.method() == Method::POST { StatusCode::SEE_OTHER } else { StatusCode::FOUND };
                r.headers_mut().insert("location", "/".parse().unwrap());
                r.headers_mut().insert("set-cookie", clear.parse().unwrap());
                r
            }
            "/api/session" => {
                // An SPA's fetch: JSON, the session cookie cleared; not in [logout] paths.
                let mut r = Response::new(full("{\"ok\":true}"));
                r.headers_mut().insert("content-type", "application/json".parse().unwrap());
                r.headers_mut().insert("set-cookie", clear.parse().unwrap());
                r
            }
            "/elsewhere" => {
                let mut r = Response::new(empty());
                *r.status_mut() = StatusCode::FOUND;
                r.headers_mut().insert("location", "/".parse().unwrap());
                r
            }
            _ => html("<p>page</p>"),
        };
        r.headers_mut().append("set-cookie", "app_pref=1; Path=/".parse().unwrap());
        r
    })
    .await
}

async fn proxy_for_app(app: &Upstream, intercom_extra: &str) -> Proxy {
    let config = config_text(
        &format!("http://{}", app.addr),
        "",
        "\n[logout]\npaths = [\"/logout\", \"/users/sign_out\"]\n",
    )
    .replace(
        "secret_env = \"TEST_MESSENGER_SECRET\"",
        &format!("secret_env = \"TEST_MESSENGER_SECRET\"\ncookie_domain = \".example.test\"\n{intercom_extra}"),
    );
    proxy_with(&config).await
}

async fn logged_in(proxy: &Proxy, user: &str) -> Jar {
    let mut jar = Jar::default();
    visit(proxy, &mut jar, Method::GET, &format!("/login/{user}")).await;
    let home = visit(proxy, &mut jar, Method::GET, "/").await;
    assert_eq!(booted_user(&home.page).as_deref(), Some(user));
    assert!(!runs_shutdown(&home.page), "a first boot needs no shutdown");
    jar
}

#[tokio::test]
async fn html_logout_page_shuts_down_without_identity_and_expires_the_intercom_cookie() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "").await;
    let mut jar = logged_in(&proxy, "alice").await;
    let out = visit(&proxy, &mut jar, Method::GET, "/logout").await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(runs_shutdown(&out.page), "{}", out.page);
    assert!(
        !out.page.contains("intercom_user_jwt"),
        "no identity on the logout page"
    );
    assert!(out.page.contains("<p>You are logged out</p>"));
    assert!(expires_intercom_session(&out.headers));
    let cookies = set_cookies(&out.headers);
    assert!(cookies.iter().any(
        |c| c.contains("Domain=.example.test") && c.starts_with("intercom-session-testapp1=;")
    ));
    assert!(
        cookies.iter().any(|c| c == "session=; Path=/; Max-Age=0"),
        "the app's own Set-Cookie is kept"
    );
    assert!(cookies.iter().any(|c| c == "app_pref=1; Path=/"));
    // The shutdown ran here: the next page has nothing to do.
    let next = visit(&proxy, &mut jar, Method::GET, "/").await;
    assert_eq!(script(&next.page), None, "{}", next.page);
}

#[tokio::test]
async fn redirect_logouts_run_the_shutdown_exactly_once_on_the_next_page() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "").await;
    for method in [Method::GET, Method::POST] {
        let mut jar = logged_in(&proxy, "alice").await;
        let out = visit(&proxy, &mut jar, method.clone(), "/users/sign_out").await;
        assert!(out.status.is_redirection(), "{method}");
        assert!(expires_intercom_session(&out.headers), "{method}");
        assert!(
            jar.has("__isp_shutdown"),
            "{method}: the marker is left for the next page"
        );

        let next = visit(&proxy, &mut jar, Method::GET, "/").await;
        assert!(
            runs_shutdown(&next.page),
            "{method}: the next page shuts down"
        );
        assert_eq!(booted_user(&next.page), None, "{method}: and boots nobody");
        assert!(
            !jar.has("__isp_shutdown"),
            "{method}: the marker is consumed"
        );

        let after = visit(&proxy, &mut jar, Method::GET, "/").await;
        assert!(!runs_shutdown(&after.page), "{method}: exactly once");
    }
}

#[tokio::test]
async fn json_logout_detected_by_the_cleared_session_cookie() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "").await;
    let mut jar = logged_in(&proxy, "alice").await;
    let out = visit(&proxy, &mut jar, Method::POST, "/api/session").await;
    assert_eq!(out.page, "{\"ok\":true}", "the JSON is untouched");
    assert!(expires_intercom_session(&out.headers));
    assert!(jar.has("__isp_shutdown"));
    let next = visit(&proxy, &mut jar, Method::GET, "/dashboard").await;
    assert!(runs_shutdown(&next.page));
}

#[tokio::test]
async fn user_switch_shuts_down_before_booting_the_new_user() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "").await;
    let mut jar = logged_in(&proxy, "alice").await;
    let alice_marker = jar.get("__isp_booted").unwrap().to_string();
    assert!(
        !alice_marker.contains("alice"),
        "the marker reveals nothing"
    );

    // Bob logs in on the same browser without logging Alice out.
    visit(&proxy, &mut jar, Method::GET, "/login/bob").await;
    let page = visit(&proxy, &mut jar, Method::GET, "/").await;
    let s = script(&page.page).unwrap();
    let shutdown = s
        .find("})();window.Intercom('shutdown');")
        .expect("shutdown first");
    let boot = s
        .find("window.Intercom('boot',")
        .expect("then an explicit boot");
    assert!(shutdown < boot);
    assert!(
        !s.contains("window.intercomSettings="),
        "no implicit boot that could race the shutdown"
    );
    assert_eq!(booted_user(&page.page).as_deref(), Some("bob"));
    assert!(
        !page.page.contains("alice"),
        "nothing of Alice in Bob's page"
    );
    assert_ne!(jar.get("__isp_booted").unwrap(), alice_marker);

    let again = visit(&proxy, &mut jar, Method::GET, "/").await;
    assert!(
        !runs_shutdown(&again.page),
        "the same user again: no shutdown"
    );
    assert_eq!(booted_user(&again.page).as_deref(), Some("bob"));
}

#[tokio::test]
async fn a_user_switch_after_a_browser_restart_is_caught() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "").await;
    let mut jar = logged_in(&proxy, "alice").await;
    // The record is re-set on every page, for as long as Intercom's own session cookie can
    // outlive its last ping (a week, plus a day), so it rolls like Intercom's.
    let page = visit(&proxy, &mut jar, Method::GET, "/").await;
    let record = set_cookies(&page.headers)
        .into_iter()
        .find(|c| c.starts_with("__isp_booted="))
        .expect("the record is re-set on every page");
    assert!(record.contains("; Max-Age=691200"), "{record}");
    // A long-lived page's token refresh extends the record, and never changes it.
    let marker = unsigned(jar.get("__isp_booted").unwrap()).to_string();
    let refresh = visit(
        &proxy,
        &mut jar,
        Method::GET,
        &format!("/__intercom/token?for={marker}"),
    )
    .await;
    assert_eq!(refresh.status, StatusCode::OK);
    assert!(
        set_cookies(&refresh.headers)
            .iter()
            .any(|c| c.starts_with(&format!("__isp_booted={marker}."))
                && c.contains("Max-Age=691200")),
        "{:?}",
        refresh.headers
    );
    let mut other = jar.clone();
    other.set("__isp_booted", "someone-else");
    let refresh = visit(&proxy, &mut other, Method::GET, "/__intercom/token").await;
    assert_eq!(refresh.status, StatusCode::OK);
    assert!(
        set_cookies(&refresh.headers).is_empty(),
        "{:?}",
        refresh.headers
    );

    // The browser restarts (Intercom's persistent cookie would survive it), and Bob logs in
    // without Alice having logged out.
    jar.restart();
    assert!(jar.has("__isp_booted"), "the record survives a restart");
    assert!(
        !jar.has("session"),
        "the app's session cookie does not (in this app)"
    );
    visit(&proxy, &mut jar, Method::GET, "/login/bob").await;
    let page = visit(&proxy, &mut jar, Method::GET, "/").await;
    assert!(runs_shutdown(&page.page), "{}", page.page);
    assert_eq!(booted_user(&page.page).as_deref(), Some("bob"));
}

#[tokio::test]
async fn visitor_logging_in_with_anonymous_boot_gets_shutdown_then_boot() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "anonymous = \"boot\"").await;
    let mut jar = Jar::default();
    let visitor = visit(&proxy, &mut jar, Method::GET, "/").await;
    assert!(script(&visitor.page).is_some() && booted_user(&visitor.page).is_none());
    assert_eq!(jar.get("__isp_booted").map(unsigned), Some("anon"));
    visit(&proxy, &mut jar, Method::POST, "/login/carol").await;
    let page = visit(&proxy, &mut jar, Method::GET, "/").await;
    assert!(
        runs_shutdown(&page.page),
        "the visitor's Messenger is shut down first"
    );
    assert_eq!(booted_user(&page.page).as_deref(), Some("carol"));
}

#[tokio::test]
async fn an_expired_session_without_a_logout_still_shuts_the_messenger_down() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "").await;
    let mut jar = logged_in(&proxy, "alice").await;
    jar.remove("session");
    let page = visit(&proxy, &mut jar, Method::GET, "/").await;
    assert!(
        runs_shutdown(&page.page),
        "the browser's Messenger was Alice's"
    );
    assert!(!jar.has("__isp_booted"));
}

#[tokio::test]
async fn normal_pages_and_other_redirects_are_no_logouts() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "").await;
    let mut jar = logged_in(&proxy, "alice").await;
    for path in ["/elsewhere", "/", "/orders"] {
        let out = visit(&proxy, &mut jar, Method::GET, path).await;
        assert!(!expires_intercom_session(&out.headers), "{path}");
        assert!(!jar.has("__isp_shutdown"), "{path}");
        assert!(!runs_shutdown(&out.page), "{path}");
    }
}

#[tokio::test]
async fn the_token_endpoint_answers_fresh_tokens_and_is_never_forwarded_or_cached() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = upstream(move |_req| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Response::new(full("app")) }
    })
    .await;
    let config = config_text(
        &format!("http://{}", app.addr),
        "",
        "\n[[routes]]\npath = \"/billing/**\"\nattributes = { section = \"billing\" }\n",
    );
    let proxy = proxy_with(&config).await;
    let session =
        session_jwt(json!({"sub": "u-1", "email": "a@example.com", "exp": now_secs() + 3600}));
    let before = now_secs();
    let req = Request::get(proxy.url("/__intercom/token?path=%2Fbilling%2Fx"))
        .header("cookie", format!("session={session}"))
        .body(empty())
        .unwrap();
    let response = client().request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer: serde_json::Value =
        serde_json::from_slice(&body_bytes(response.into_body()).await).unwrap();
    let claims = verify_messenger_jwt(answer["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], "u-1");
    assert_eq!(
        claims["section"], "billing",
        "the page's route attributes are signed in"
    );
    assert!(
        claims["exp"].as_u64().unwrap() >= before + 3600,
        "a full token_ttl from now"
    );
    assert_eq!(answer["exp"], claims["exp"]);

    let req = Request::get(proxy.url("/__intercom/token"))
        .body(empty())
        .unwrap();
    let response = client().request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the endpoint is the proxy's, never the app's"
    );
}

#[tokio::test]
async fn injected_pages_refresh_their_token_and_the_endpoint_can_be_turned_off() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "token_ttl = \"2m\"").await;
    let jar = logged_in(&proxy, "alice").await;
    let mut j = jar.clone();
    let page = visit(&proxy, &mut j, Method::GET, "/").await;
    let s = script(&page.page).unwrap();
    assert!(s.contains("fetch(\"/__intercom/token\"+'?for='"), "{s}");
    assert!(
        s.contains("setTimeout(r,96*1000)"),
        "refresh at 80% of a 2m token: {s}"
    );
    assert!(
        s.contains("'pushState','replaceState'"),
        "SPA navigation updates"
    );

    let off = proxy_for_app(&app, "token_path = \"\"\nspa_updates = false").await;
    let mut j = logged_in(&off, "alice").await;
    let page = visit(&off, &mut j, Method::GET, "/").await;
    let s = script(&page.page).unwrap();
    assert!(!s.contains("fetch(") && !s.contains("pushState"), "{s}");
    let forwarded = visit(&off, &mut j, Method::GET, "/__intercom/token").await;
    assert!(
        forwarded.page.contains("<p>page</p>"),
        "turned off: the path is the app's again"
    );
}

#[tokio::test]
async fn a_pending_shutdown_runs_even_on_a_page_that_loads_intercom_itself() {
    let app = upstream(|req| async move {
        if req.uri().path() == "/logout" {
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut().insert("location", "/".parse().unwrap());
            r.headers_mut()
                .insert("set-cookie", "session=; Path=/; Max-Age=0".parse().unwrap());
            return r;
        }
        let mut r = Response::new(full(
            "<html><head><script>window.intercomSettings={app_id:'testapp1'};</script></head><body>own snippet</body></html>",
        ));
        r.headers_mut().insert("content-type", "text/html".parse().unwrap());
        r
    })
    .await;
    let proxy = proxy_for_app(&app, "").await;
    let mut jar = Jar::default();
    // A forged marker is no pending shutdown: the page is the app's, untouched.
    jar.set("__isp_shutdown", "1");
    let page = visit(&proxy, &mut jar, Method::GET, "/").await;
    assert!(
        !page.page.contains("(function(){var w=window"),
        "{}",
        page.page
    );
    // A real logout leaves one, and the app's own Messenger page runs it.
    visit(&proxy, &mut jar, Method::GET, "/logout").await;
    assert!(jar.has("__isp_shutdown"));
    let page = visit(&proxy, &mut jar, Method::GET, "/").await;
    assert!(runs_shutdown(&page.page), "{}", page.page);
    assert!(!jar.has("__isp_shutdown"));
    // Without a pending shutdown the page's own Messenger is left alone.
    let again = visit(&proxy, &mut jar, Method::GET, "/").await;
    assert!(
        !again.page.contains("(function(){var w=window"),
        "{}",
        again.page
    );
}

#[tokio::test]
async fn a_cleared_cookie_on_an_anonymous_response_is_no_logout() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "").await;
    let mut jar = Jar::default();
    let out = visit(&proxy, &mut jar, Method::POST, "/api/session").await;
    assert!(
        !expires_intercom_session(&out.headers),
        "no session was sent: nothing to end"
    );
    assert!(!jar.has("__isp_shutdown"));
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_page_booted_for_someone_else() {
    let app = app().await;
    let proxy = proxy_for_app(&app, "").await;
    let alice = logged_in(&proxy, "alice").await;
    let alice_marker = unsigned(alice.get("__isp_booted").unwrap()).to_string();
    let bob = logged_in(&proxy, "bob").await;
    let ask = |jar: Jar, marker: String| {
        let url = proxy.url(&format!("/__intercom/token?for={marker}"));
        async move {
            let req = Request::get(url)
                .header("cookie", jar.header())
                .body(empty())
                .unwrap();
            client().request(req).await.unwrap().status()
        }
    };
    assert_eq!(
        ask(alice.clone(), alice_marker.clone()).await,
        StatusCode::OK
    );
    assert_eq!(
        ask(bob, alice_marker).await,
        StatusCode::CONFLICT,
        "Alice's page must never get Bob's token"
    );
}
