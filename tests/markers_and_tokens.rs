//! The security review's findings 8, 9 and 11 through the real service stack: which
//! responses count as a logout, signed markers (forged ones change nothing, a pending shutdown
//! survives a page its snippet could not enter), `Secure` from trusted proxies, the session
//! JWT's leeway, the token endpoint's method and route checks, and an introspected session id
//! reused by a new login.
#![cfg(feature = "server")]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::json;

const PAGE: &str = "<html><head><title>t</title></head><body><p>page</p></body></html>";
/// A page whose end is inside an open comment: nowhere to put a snippet.
const NO_ROOM: &str = "<p>x</p><!-- never closed";

/// An app whose `/logout` accepts POST only (405 otherwise) and answers a POST with a
/// redirect clearing the session; `/bye` is a page anyone can GET.
async fn app() -> Upstream {
    upstream(|req| async move {
        let html = |status: StatusCode, body: &str| {
            let mut r = Response::new(full(body.to_string()));
            *r.status_mut() = status;
            r.headers_mut()
                .insert("content-type", "text/html".parse().unwrap());
            r
        };
        match (req.method().clone(), req.uri().path()) {
            (Method::POST, "/logout") => {
                let mut r = Response::new(empty());
                *r.status_mut() = StatusCode::SEE_OTHER;
                r.headers_mut().insert("location", "/".parse().unwrap());
                r.headers_mut()
                    .insert("set-cookie", "session=; Path=/; Max-Age=0".parse().unwrap());
                r
            }
            (_, "/logout") => html(StatusCode::METHOD_NOT_ALLOWED, "<p>POST only</p>"),
            (_, "/no-room") => html(StatusCode::OK, NO_ROOM),
            _ => html(StatusCode::OK, PAGE),
        }
    })
    .await
}

async fn proxy(app: &Upstream, server_extra: &str, extra: &str) -> Proxy {
    let config = config_text(&format!("http://{}", app.addr), server_extra, extra)
        + "\n[logout]\npaths = [\"/logout\", \"/bye\"]\n\n[[routes]]\npath = \"/admin/**\"\ninject = false\n";
    proxy_with(&config).await
}

fn alice() -> String {
    format!(
        "session={}",
        session_jwt(json!({"sub": "alice", "exp": now_secs() + 3600}))
    )
}

async fn send(proxy: &Proxy, method: Method, path: &str, headers: &[(&str, &str)]) -> Visit {
    let mut req = Request::builder()
        .method(method)
        .uri(proxy.url(path))
        .header("accept", "text/html");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = client().request(req.body(empty()).unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let page = String::from_utf8_lossy(&body_bytes(response.into_body()).await).into_owned();
    Visit {
        status,
        headers,
        page,
    }
}

struct Visit {
    status: StatusCode,
    headers: HeaderMap,
    page: String,
}

impl Visit {
    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    fn set_cookie(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&prefix))
    }

    fn expires_intercom(&self) -> bool {
        self.set_cookie("intercom-session-testapp1")
            .is_some_and(|c| c.contains("Max-Age=0"))
    }
}

#[tokio::test]
async fn only_a_successful_logout_with_a_session_counts() {
    let app = app().await;
    let proxy = proxy(&app, "", "").await;
    let session = alice();

    // The app refuses the GET: nothing was logged out, so nothing is shut down.
    let refused = send(&proxy, Method::GET, "/logout", &[("cookie", &session)]).await;
    assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.page, "<p>POST only</p>");
    assert!(!refused.expires_intercom(), "{:?}", refused.headers);
    assert_eq!(refused.set_cookie("__isp_shutdown"), None);

    // A cross-site GET of a logout path, with no session: no one to log out.
    let sessionless = send(&proxy, Method::GET, "/bye", &[]).await;
    assert_eq!(sessionless.page, PAGE, "the page is the app's, untouched");
    assert!(!sessionless.expires_intercom(), "{:?}", sessionless.headers);
    assert_eq!(sessionless.set_cookie("__isp_shutdown"), None);

    // The real logout: the app's redirect expires Intercom's cookie and leaves a shutdown.
    let logout = send(&proxy, Method::POST, "/logout", &[("cookie", &session)]).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert!(logout.expires_intercom(), "{:?}", logout.headers);
    let pending = logout
        .set_cookie("__isp_shutdown")
        .expect("a pending shutdown");
    assert!(!pending.contains("Max-Age=0"), "{pending}");
}

#[tokio::test]
async fn forged_markers_change_nothing() {
    let app = app().await;
    let proxy = proxy(&app, "", "").await;

    // A visitor's page with forged markers is the app's page, as if they were not there.
    for forged in [
        "__isp_shutdown=1",
        "__isp_shutdown=1733000000.AAAAAAAAAAAAAAAAAAAAAA",
        "__isp_booted=someone",
        "__isp_booted=anon",
    ] {
        let page = send(&proxy, Method::GET, "/", &[("cookie", forged)]).await;
        assert_eq!(page.page, PAGE, "{forged}");
        assert!(
            page.set_cookies().is_empty(),
            "{forged}: {:?}",
            page.headers
        );
    }

    // A logged-in user whose forged record names someone else boots without a shutdown.
    let cookie = format!("{}; __isp_booted=someone-else", alice());
    let page = send(&proxy, Method::GET, "/", &[("cookie", &cookie)]).await;
    assert_eq!(booted_user(&page.page).as_deref(), Some("alice"));
    assert!(!runs_shutdown(&page.page), "{}", page.page);
}

#[tokio::test]
async fn a_pending_shutdown_is_cleared_only_by_the_page_that_runs_it() {
    let app = app().await;
    let proxy = proxy(&app, "", "").await;
    let mut jar = Jar::default();
    let visit = async |jar: &mut Jar, method: Method, path: &str| {
        let cookie = jar.header();
        let headers: Vec<(&str, &str)> = if cookie.is_empty() {
            vec![]
        } else {
            vec![("cookie", cookie.as_str())]
        };
        let visit = send(&proxy, method, path, &headers).await;
        jar.absorb(&visit.headers);
        jar.run_scripts(&visit.page);
        visit
    };
    jar.set("session", &alice()["session=".len()..]);
    let first = visit(&mut jar, Method::GET, "/").await;
    assert_eq!(booted_user(&first.page).as_deref(), Some("alice"));
    visit(&mut jar, Method::POST, "/logout").await;
    assert!(jar.has("__isp_shutdown") && !jar.has("session"));

    // A page with no room for the snippet: the shutdown cannot run, so it stays pending.
    let no_room = visit(&mut jar, Method::GET, "/no-room").await;
    assert_eq!(no_room.page, NO_ROOM);
    assert!(jar.has("__isp_shutdown"));

    // The next page runs it; the head still says "pending" and the script, right after the
    // shutdown, clears it.
    let page = visit(&mut jar, Method::GET, "/").await;
    assert!(runs_shutdown(&page.page), "{}", page.page);
    let head = page
        .set_cookie("__isp_shutdown")
        .expect("re-set in the head");
    assert!(!head.contains("Max-Age=0"), "{head}");
    let script = script(&page.page).unwrap();
    let shutdown_at = script.find("window.Intercom('shutdown')").unwrap();
    let cleared_at = script
        .find("document.cookie=\"__isp_shutdown=; Path=/; SameSite=Lax; Max-Age=0\"")
        .expect("the script clears the marker");
    assert!(shutdown_at < cleared_at);
    assert!(!jar.has("__isp_shutdown"));
    let after = visit(&mut jar, Method::GET, "/").await;
    assert_eq!(after.page, PAGE, "once only");
}

#[tokio::test]
async fn secure_markers_follow_forwarded_proto_from_trusted_proxies_only() {
    let app = app().await;
    let session = alice();
    let headers = [("cookie", session.as_str()), ("x-forwarded-proto", "https")];
    for (server_extra, secure) in [
        ("trusted_proxies = [\"127.0.0.1/32\"]", true),
        ("trusted_proxies = [\"10.0.0.0/8\"]", false),
        ("", false),
    ] {
        let proxy = proxy(&app, server_extra, "").await;
        let page = send(&proxy, Method::GET, "/", &headers).await;
        let record = page.set_cookie("__isp_booted").expect("a booted record");
        assert_eq!(
            record.contains("; Secure"),
            secure,
            "{server_extra}: {record}"
        );
        let plain = send(&proxy, Method::GET, "/", &headers[..1]).await;
        let record = plain.set_cookie("__isp_booted").unwrap();
        assert!(!record.contains("Secure"), "{server_extra}: {record}");
    }
}

#[tokio::test]
async fn an_expired_session_jwt_boots_no_one_unless_leeway_allows() {
    let app = app().await;
    let expired = format!(
        "session={}",
        session_jwt(json!({"sub": "alice", "exp": now_secs() - 30}))
    );
    let strict = proxy(&app, "", "").await;
    let page = send(&strict, Method::GET, "/", &[("cookie", &expired)]).await;
    assert_eq!(page.page, PAGE, "expired 30 s ago: no identity by default");
    let lenient = proxy(&app, "", "leeway = \"60s\"").await;
    let page = send(&lenient, Method::GET, "/", &[("cookie", &expired)]).await;
    assert_eq!(booted_user(&page.page).as_deref(), Some("alice"));
}

#[tokio::test]
async fn the_token_endpoint_answers_get_only_and_only_for_pages_with_the_messenger() {
    let app = app().await;
    let proxy = proxy(&app, "", "").await;
    let session = alice();
    let cookie = [("cookie", session.as_str())];
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let answer = send(&proxy, method.clone(), "/__intercom/token", &cookie).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(answer.headers["allow"], "GET, HEAD");
        assert!(!answer.page.contains("intercom_user_jwt"));
    }
    for path in [
        "/admin/panel",
        "/%61dmin/panel",
        "/admin%2fpanel",
        "//admin/./panel",
    ] {
        let query = format!(
            "/__intercom/token?path={}",
            form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
        );
        let answer = send(&proxy, Method::GET, &query, &cookie).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!answer.page.contains("intercom_user_jwt"), "{path}");
    }
    let answer = send(
        &proxy,
        Method::GET,
        "/__intercom/token?path=%2Fhome",
        &cookie,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&answer.page).unwrap();
    let claims = verify_messenger_jwt(body["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], "alice");
}

#[tokio::test]
async fn a_login_reusing_an_introspected_session_id_names_the_new_user() {
    // The introspection service: whom each session id belongs to, changed by the test.
    let owners = Arc::new(Mutex::new(HashMap::from([("s1", "alice")])));
    let seen = owners.clone();
    let auth = upstream(move |req| {
        let owners = seen.clone();
        async move {
            let cookie = req
                .headers()
                .get("cookie")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let owner = cookie
                .strip_prefix("sid=")
                .and_then(|sid| owners.lock().unwrap().get(sid).copied());
            match owner {
                Some(user) => Response::new(full(json!({"id": user}).to_string())),
                None => {
                    let mut r = Response::new(full("{}"));
                    *r.status_mut() = StatusCode::UNAUTHORIZED;
                    r
                }
            }
        }
    })
    .await;
    // The app: a login page that (re)sets the same session id, as apps that keep the id
    // across a login do; every other path is a plain page.
    let app = upstream(|req| async move {
        let mut r = Response::new(full(PAGE));
        r.headers_mut()
            .insert("content-type", "text/html".parse().unwrap());
        if req.uri().path() == "/login" {
            r.headers_mut()
                .insert("set-cookie", "sid=s1; Path=/; HttpOnly".parse().unwrap());
        }
        r
    })
    .await;
    let session = format!(
        "[session]\ncookie = \"sid\"\nresolver = \"http\"\ncache_ttl = \"1h\"\n\
         [session.fields]\nuser_id = \"/id\"\n[session.http]\nurl = \"http://{}/me\"\n",
        auth.addr
    );
    let proxy = proxy_with(&config_with_session(
        &format!("http://{}", app.addr),
        &session,
    ))
    .await;
    let page = send(&proxy, Method::GET, "/", &[("cookie", "sid=s1")]).await;
    assert_eq!(messenger_user(&page.page).as_deref(), Some("alice"));

    // Bob logs in on the same browser and the app keeps the session id.
    owners.lock().unwrap().insert("s1", "bob");
    let login = send(&proxy, Method::POST, "/login", &[("cookie", "sid=s1")]).await;
    assert_eq!(
        booted_user(&login.page).as_deref(),
        Some("bob"),
        "{}",
        login.page
    );
    let page = send(&proxy, Method::GET, "/", &[("cookie", "sid=s1")]).await;
    assert_eq!(
        messenger_user(&page.page).as_deref(),
        Some("bob"),
        "the cached lookup of alice is gone"
    );
}
