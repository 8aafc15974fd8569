//! The marker HMACs a worker already computed, remembered: every injected page needs its
//! user's booted-for record and that record's signature, and every request from a browser
//! that has one brings it back to be verified. Each is an HMAC-SHA256 (about 7,000
//! instructions, a twentieth of a page's whole cost); a lookup here is a few hundred.
//!
//! Only results that hold are kept (a forged value is checked every time, and cannot fill
//! the maps), and each map is bounded: past [`CAPACITY`] entries it starts afresh.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Entries per map: far more users than one proxy sees within a few minutes, a few
/// hundred KiB at most.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(super) struct Recall {
    maps: Mutex<Maps>,
}

#[derive(Default)]
struct Maps {
    /// User id → booted-for marker.
    markers: HashMap<Box<str>, Box<str>>,
    /// Booted-for marker → its signed cookie value.
    signed: HashMap<Box<str>, Box<str>>,
    /// Signed booted-for values whose signature held.
    verified: HashSet<Box<str>>,
}

fn remember<V>(map: &mut HashMap<Box<str>, V>, key: &str, value: V) {
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(key.into(), value);
}

impl Recall {
    /// The marker of `user_id`, computed by `make` the first time.
    pub(super) fn marker(&self, user_id: &str, make: impl FnOnce() -> String) -> String {
        self.cached(|m| &mut m.markers, user_id, make)
    }

    /// The signed cookie value of `marker`, computed by `sign` the first time.
    pub(super) fn signed(&self, marker: &str, sign: impl FnOnce() -> String) -> String {
        self.cached(|m| &mut m.signed, marker, sign)
    }

    fn cached(
        &self,
        map: impl Fn(&mut Maps) -> &mut HashMap<Box<str>, Box<str>>,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> String {
        if let Ok(mut maps) = self.maps.lock()
            && let Some(found) = map(&mut maps).get(key)
        {
            return found.to_string();
        }
        let made = make();
        if let Ok(mut maps) = self.maps.lock() {
            remember(map(&mut maps), key, made.as_str().into());
        }
        made
    }

    /// Whether `signed` is known to hold; else `verify` decides, and a yes is remembered.
    pub(super) fn verified(&self, signed: &str, verify: impl FnOnce() -> bool) -> bool {
        if let Ok(maps) = self.maps.lock()
            && maps.verified.contains(signed)
        {
            return true;
        }
        let holds = verify();
        if holds && let Ok(mut maps) = self.maps.lock() {
            if maps.verified.len() >= CAPACITY {
                maps.verified.clear();
            }
            maps.verified.insert(signed.into());
        }
        holds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_holds_is_remembered_and_maps_stay_bounded() {
        let recall = Recall::default();
        let mut checks = 0;
        for _ in 0..3 {
            assert!(!recall.verified("forged", || {
                checks += 1;
                false
            }));
        }
        assert_eq!(checks, 3, "a forged value is checked every time");
        for _ in 0..3 {
            assert!(recall.verified("genuine", || {
                checks += 1;
                true
            }));
        }
        assert_eq!(checks, 4, "a genuine one once");
        let mut made = 0;
        for i in 0..CAPACITY + 10 {
            recall.marker(&format!("user-{i}"), || {
                made += 1;
                format!("m{i}")
            });
        }
        assert_eq!(recall.marker("user-1", || "again".into()), "again");
        assert!(recall.maps.lock().unwrap().markers.len() <= CAPACITY);
        assert_eq!(made, CAPACITY + 10);
    }
}
