//! The decision as a table: each row is one behaviour of the contract (logout, user switch,
//! pass-through) with the request's facts, the response head, the outcome and the marker
//! cookies it leaves.

use http::Method;
use serde_json::Map;

use super::*;

fn user(id: &str) -> User {
    User {
        id: id.into(),
        email: None,
        name: None,
        attributes: Map::new(),
    }
}

/// A GET navigation on an injected route, with no cookies of interest.
fn page_load() -> RequestFacts<'static> {
    RequestFacts {
        method: &Method::GET,
        token_path: false,
        logout_path: false,
        route_injects: true,
        page_request: true,
        session_cookie: false,
        pending_shutdown: false,
        booted_for: None,
        boot_visitors: false,
    }
}

const PAGE: ResponseFacts = ResponseFacts {
    succeeded: true,
    page: true,
    new_session: false,
    clears_session_cookie: false,
};
/// A redirect, JSON, an image: anything that is not a rewritable page.
const NOT_A_PAGE: ResponseFacts = ResponseFacts {
    page: false,
    ..PAGE
};

#[test]
fn before_forwarding_only_page_loads_are_identified() {
    let cases: [(&str, RequestFacts<'static>, Step); 7] = [
        ("page load", page_load(), Step::Forward { identify: true }),
        (
            "POST navigation (a form re-rendering a page)",
            RequestFacts {
                method: &Method::POST,
                ..page_load()
            },
            Step::Forward { identify: true },
        ),
        (
            "HEAD: no body to put anything in",
            RequestFacts {
                method: &Method::HEAD,
                ..page_load()
            },
            Step::Forward { identify: false },
        ),
        (
            "a route with inject = false",
            RequestFacts {
                route_injects: false,
                ..page_load()
            },
            Step::Forward { identify: false },
        ),
        (
            "a stylesheet, an image, a fetch()",
            RequestFacts {
                page_request: false,
                ..page_load()
            },
            Step::Forward { identify: false },
        ),
        (
            "a logout path: the user is leaving",
            RequestFacts {
                logout_path: true,
                ..page_load()
            },
            Step::Forward { identify: false },
        ),
        (
            "the token endpoint is answered by the proxy",
            RequestFacts {
                token_path: true,
                ..page_load()
            },
            Step::Token,
        ),
    ];
    for (row, request, expected) in cases {
        assert_eq!(step(&request), expected, "{row}");
    }
}

struct Row<'a> {
    row: &'a str,
    request: RequestFacts<'a>,
    user: Option<Who<'a>>,
    response: ResponseFacts,
    outcome: Outcome<'a>,
    markers: MarkerChanges<'a>,
}

#[test]
fn every_behaviour_of_the_contract_is_one_row() {
    let (alice, bob) = (user("alice"), user("bob"));
    let alice = Who::User {
        user: &alice,
        marker: "m-alice",
    };
    let bob = Who::User {
        user: &bob,
        marker: "m-bob",
    };
    let set = |marker| MarkerChanges {
        booted_for: Some(Some(marker)),
        ..MarkerChanges::default()
    };
    let rows = [
        Row {
            row: "a user's page boots the Messenger and records whom for",
            request: page_load(),
            user: Some(alice),
            response: PAGE,
            outcome: Outcome::Boot(alice),
            markers: set("m-alice"),
        },
        Row {
            row: "the same user again: no shutdown; the record rolls on",
            request: RequestFacts {
                booted_for: Some("m-alice"),
                ..page_load()
            },
            user: Some(alice),
            response: PAGE,
            outcome: Outcome::Boot(alice),
            markers: set("m-alice"),
        },
        Row {
            row: "user switch: Bob after Alice shuts down, then boots Bob",
            request: RequestFacts {
                booted_for: Some("m-alice"),
                ..page_load()
            },
            user: Some(bob),
            response: PAGE,
            outcome: Outcome::ShutdownThenBoot(bob),
            markers: set("m-bob"),
        },
        Row {
            row: "a visitor (anonymous = skip) gets the page untouched",
            request: page_load(),
            user: None,
            response: PAGE,
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a session that expired without a logout: shutdown only, record forgotten",
            request: RequestFacts {
                booted_for: Some("m-alice"),
                ..page_load()
            },
            user: None,
            response: PAGE,
            outcome: Outcome::ShutdownOnly,
            markers: MarkerChanges {
                booted_for: Some(None),
                ..MarkerChanges::default()
            },
        },
        Row {
            row: "a visitor with anonymous = boot: boot without identity",
            request: RequestFacts {
                boot_visitors: true,
                ..page_load()
            },
            user: None,
            response: PAGE,
            outcome: Outcome::Boot(Who::Visitor),
            markers: set(VISITOR_MARKER),
        },
        Row {
            row: "anonymous = boot, Alice's session expired: shutdown, then boot a visitor",
            request: RequestFacts {
                boot_visitors: true,
                booted_for: Some("m-alice"),
                ..page_load()
            },
            user: None,
            response: PAGE,
            outcome: Outcome::ShutdownThenBoot(Who::Visitor),
            markers: set(VISITOR_MARKER),
        },
        Row {
            row: "a visitor who logs in (anonymous = boot): shutdown, then boot the user",
            request: RequestFacts {
                boot_visitors: true,
                booted_for: Some(VISITOR_MARKER),
                ..page_load()
            },
            user: Some(alice),
            response: PAGE,
            outcome: Outcome::ShutdownThenBoot(alice),
            markers: set("m-alice"),
        },
        Row {
            row: "a pending shutdown runs first on the next page, and is consumed",
            request: RequestFacts {
                pending_shutdown: true,
                ..page_load()
            },
            user: Some(alice),
            response: PAGE,
            outcome: Outcome::ShutdownThenBoot(alice),
            markers: MarkerChanges {
                pending_shutdown: Some(false),
                ..set("m-alice")
            },
        },
        Row {
            row: "a pending shutdown on a visitor's page (anonymous = skip): shutdown only",
            request: RequestFacts {
                pending_shutdown: true,
                ..page_load()
            },
            user: None,
            response: PAGE,
            outcome: Outcome::ShutdownOnly,
            markers: MarkerChanges {
                pending_shutdown: Some(false),
                ..MarkerChanges::default()
            },
        },
        Row {
            row: "a pending shutdown waits while the answers are not pages",
            request: RequestFacts {
                pending_shutdown: true,
                ..page_load()
            },
            user: Some(alice),
            response: NOT_A_PAGE,
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a pending shutdown waits through fetch() calls",
            request: RequestFacts {
                pending_shutdown: true,
                page_request: false,
                ..page_load()
            },
            user: None,
            response: PAGE,
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a logout path the app refused (405, 403, 500) logged no one out",
            request: RequestFacts {
                logout_path: true,
                session_cookie: true,
                booted_for: Some("m-alice"),
                ..page_load()
            },
            user: None,
            response: ResponseFacts {
                succeeded: false,
                ..NOT_A_PAGE
            },
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a logout path visited without a session (a cross-site GET) ends no one's session",
            request: RequestFacts {
                logout_path: true,
                booted_for: Some("m-alice"),
                ..page_load()
            },
            user: None,
            response: NOT_A_PAGE,
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a logout answered with a page shuts down there, expires Intercom's cookie",
            request: RequestFacts {
                logout_path: true,
                session_cookie: true,
                booted_for: Some("m-alice"),
                ..page_load()
            },
            user: None,
            response: PAGE,
            outcome: Outcome::LogoutPage {
                boot_visitor: false,
            },
            markers: MarkerChanges {
                booted_for: Some(None),
                expire_intercom_session: true,
                ..MarkerChanges::default()
            },
        },
        Row {
            row: "a logout page with anonymous = boot: shutdown, then boot a visitor",
            request: RequestFacts {
                logout_path: true,
                session_cookie: true,
                boot_visitors: true,
                ..page_load()
            },
            user: None,
            response: PAGE,
            outcome: Outcome::LogoutPage { boot_visitor: true },
            markers: MarkerChanges {
                expire_intercom_session: true,
                ..MarkerChanges::default()
            },
        },
        Row {
            row: "a logout that redirects leaves the one-shot marker for the next page",
            request: RequestFacts {
                method: &Method::POST,
                logout_path: true,
                session_cookie: true,
                booted_for: Some("m-alice"),
                page_request: false,
                ..page_load()
            },
            user: None,
            response: NOT_A_PAGE,
            outcome: Outcome::LogoutElsewhere,
            markers: MarkerChanges {
                pending_shutdown: Some(true),
                booted_for: Some(None),
                expire_intercom_session: true,
            },
        },
        Row {
            row: "a logout path on a route with inject = false is still a logout",
            request: RequestFacts {
                logout_path: true,
                session_cookie: true,
                route_injects: false,
                ..page_load()
            },
            user: None,
            response: NOT_A_PAGE,
            outcome: Outcome::LogoutElsewhere,
            markers: MarkerChanges {
                pending_shutdown: Some(true),
                expire_intercom_session: true,
                ..MarkerChanges::default()
            },
        },
        Row {
            row: "an SPA's fetch('/api/logout') that expires the session cookie is a logout",
            request: RequestFacts {
                page_request: false,
                session_cookie: true,
                booted_for: Some("m-alice"),
                ..page_load()
            },
            user: None,
            response: ResponseFacts {
                clears_session_cookie: true,
                ..NOT_A_PAGE
            },
            outcome: Outcome::LogoutElsewhere,
            markers: MarkerChanges {
                pending_shutdown: Some(true),
                booted_for: Some(None),
                expire_intercom_session: true,
            },
        },
        Row {
            row: "an app clearing a stale cookie of a request that had none is no logout",
            request: page_load(),
            user: None,
            response: ResponseFacts {
                clears_session_cookie: true,
                ..PAGE
            },
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a page that sets another session (a login, a regenerated id): who it names is asked",
            request: page_load(),
            user: Some(alice),
            response: ResponseFacts {
                new_session: true,
                ..PAGE
            },
            outcome: Outcome::Reidentify,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a visitor's login page sets a session: who it names is asked",
            request: page_load(),
            user: None,
            response: ResponseFacts {
                new_session: true,
                ..PAGE
            },
            outcome: Outcome::Reidentify,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a login answered with a redirect: untouched (the next page boots)",
            request: page_load(),
            user: None,
            response: ResponseFacts {
                new_session: true,
                ..NOT_A_PAGE
            },
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a new session on a route with inject = false: untouched",
            request: RequestFacts {
                route_injects: false,
                ..page_load()
            },
            user: None,
            response: ResponseFacts {
                new_session: true,
                ..PAGE
            },
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a logout path that sets a fresh session (PHP regenerates on logout): a logout",
            request: RequestFacts {
                logout_path: true,
                session_cookie: true,
                ..page_load()
            },
            user: None,
            response: ResponseFacts {
                new_session: true,
                ..PAGE
            },
            outcome: Outcome::LogoutPage {
                boot_visitor: false,
            },
            markers: MarkerChanges {
                pending_shutdown: None,
                booted_for: None,
                expire_intercom_session: true,
            },
        },
        Row {
            row: "the session re-identified as bob where alice was booted: shutdown, then bob",
            request: RequestFacts {
                session_cookie: true,
                booted_for: Some("m-alice"),
                ..page_load()
            },
            user: Some(bob),
            response: PAGE,
            outcome: Outcome::ShutdownThenBoot(bob),
            markers: MarkerChanges {
                pending_shutdown: None,
                booted_for: Some(Some("m-bob")),
                expire_intercom_session: false,
            },
        },
        Row {
            row: "a user's request for something that is not a page: untouched",
            request: page_load(),
            user: Some(alice),
            response: NOT_A_PAGE,
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "HEAD of a user's page: untouched",
            request: RequestFacts {
                method: &Method::HEAD,
                ..page_load()
            },
            user: None,
            response: PAGE,
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
        Row {
            row: "a route with inject = false: untouched, even with a switch pending",
            request: RequestFacts {
                route_injects: false,
                booted_for: Some("m-alice"),
                pending_shutdown: true,
                ..page_load()
            },
            user: None,
            response: PAGE,
            outcome: Outcome::Pass,
            markers: MarkerChanges::default(),
        },
    ];
    for row in rows {
        let facts = Facts {
            request: row.request,
            user: row.user,
            identity_unknown: false,
        };
        let outcome = decide(&facts, &row.response);
        assert_eq!(outcome, row.outcome, "{}", row.row);
        assert_eq!(outcome.marker_changes(&facts), row.markers, "{}", row.row);
        // The request was prepared for a full page whenever the answer may get a snippet. A
        // visitor's request is not (its validators and codings stand): a new session it
        // gets is identified only when the answer is a page the rewriter takes as it is.
        if !matches!(
            outcome,
            Outcome::Pass | Outcome::LogoutElsewhere | Outcome::Reidentify
        ) {
            assert!(facts.prepares_page(), "{}: prepared", row.row);
        }
    }
}

#[test]
fn a_session_whose_store_failed_leaves_the_messenger_as_the_browser_has_it() {
    let unknown = |request| Facts {
        request,
        user: None,
        identity_unknown: true,
    };
    // Booted for alice, store down: neither a shutdown nor a visitor's boot.
    for boot_visitors in [false, true] {
        let facts = unknown(RequestFacts {
            session_cookie: true,
            booted_for: Some("m-alice"),
            boot_visitors,
            ..page_load()
        });
        assert_eq!(
            decide(&facts, &PAGE),
            Outcome::Pass,
            "visitors boot: {boot_visitors}"
        );
        assert!(!facts.injects());
    }
    // A logout still pending from before runs: it names no one.
    let facts = unknown(RequestFacts {
        session_cookie: true,
        booted_for: Some("m-alice"),
        pending_shutdown: true,
        ..page_load()
    });
    assert_eq!(decide(&facts, &PAGE), Outcome::ShutdownOnly);
}
