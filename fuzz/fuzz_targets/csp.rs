//! The CSP rewrite (`inject::csp`) on arbitrary header values. Beyond never panicking, the
//! rewrite may only add what the Messenger needs and take away nothing but `'none'`:
//!
//! - as many comma-separated policies come out as went in;
//! - every directive of a policy is still there, with all its sources but `'none'`;
//! - every source in the output was in the same policy, or is the snippet's hash or an
//!   Intercom host;
//! - rewriting twice gives what rewriting once gave.
#![no_main]

use std::sync::LazyLock;

use intercom_secure_proxy::config::Region;
use intercom_secure_proxy::inject::csp::{CspContext, find_nonce, rewrite};
use intercom_secure_proxy::intercom::IntercomHosts;
use libfuzzer_sys::fuzz_target;

static HOSTS: LazyLock<IntercomHosts> =
    LazyLock::new(|| IntercomHosts::new(Region::Eu, Some("https://widget.example.com")));
const HASH: &str = "'sha256-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/ABCDE='";

/// `(name, sources)` of each directive, first occurrence only, as browsers read it.
fn parse(policy: &str) -> Vec<(String, Vec<&str>)> {
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    for part in policy.split(';') {
        let mut tokens = part.split_ascii_whitespace();
        let Some(name) = tokens.next() else { continue };
        let name = name.to_ascii_lowercase();
        if out.iter().all(|(n, _)| *n != name) {
            out.push((name, tokens.collect()));
        }
    }
    out
}

fn check(value: &str, nonce: Option<&str>) {
    let ctx = CspContext {
        snippet_hash: HASH,
        nonce,
        hosts: &HOSTS,
    };
    let out = rewrite(value, &ctx);
    let _ = find_nonce(value);
    let _ = find_nonce(&out);
    let added: Vec<&str> = [
        &HOSTS.script,
        &HOSTS.connect,
        &HOSTS.img,
        &HOSTS.font,
        &HOSTS.media,
        &HOSTS.frame,
        &HOSTS.form_action,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .chain([HASH])
    .collect();

    let before: Vec<&str> = value.split(',').collect();
    let after: Vec<&str> = out.split(',').collect();
    assert_eq!(before.len(), after.len(), "policies: {value:?} -> {out:?}");
    for (policy_in, policy_out) in before.iter().zip(&after) {
        let (d_in, d_out) = (parse(policy_in), parse(policy_out));
        let all_in: Vec<&str> = d_in.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        for (name, sources) in &d_in {
            let Some((_, kept)) = d_out.iter().find(|(n, _)| n == name) else {
                panic!("directive {name} dropped: {policy_in:?} -> {policy_out:?}");
            };
            for source in sources {
                assert!(
                    source.eq_ignore_ascii_case("'none'") || kept.contains(source),
                    "{name} lost {source:?}: {policy_in:?} -> {policy_out:?}"
                );
            }
        }
        for (name, sources) in &d_out {
            for source in sources {
                assert!(
                    all_in.contains(source) || added.contains(source),
                    "{name} gained {source:?}: {policy_in:?} -> {policy_out:?}"
                );
            }
        }
    }
    assert_eq!(rewrite(&out, &ctx), out, "not idempotent on {value:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    // The page's own nonce (found in the header), or none: the hash is used.
    let nonce = find_nonce(value);
    check(value, nonce.as_deref());
    check(value, None);
});
