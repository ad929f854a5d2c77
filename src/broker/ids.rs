//! The client-id index: client identifier to session key. Open addressing over session keys
//! alone (4 bytes a slot, linear probing, at most 7/8 full); the identifier's text lives once,
//! in the session, and a probe compares against it there. A `HashMap<Rc<str>, u32>` costs about
//! 40 bytes per client at these loads; this costs 5 to 9.

use crate::session::Session;
use slab::Slab;
use std::hash::{BuildHasher, RandomState};

const EMPTY: u32 = u32::MAX;
/// A removed entry: probes continue past it; inserts may reuse it.
const GONE: u32 = u32::MAX - 1;

/// Client identifier → session key.
#[derive(Debug, Default)]
pub(crate) struct IdIndex {
    slots: Vec<u32>,
    /// Live entries.
    len: usize,
    /// Live entries plus `GONE` markers (what bounds the probe length).
    used: usize,
    hasher: RandomState,
}

impl IdIndex {
    fn start(&self, id: &str) -> usize {
        self.hasher.hash_one(id) as usize & (self.slots.len() - 1)
    }

    /// Number of identifiers indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The session of this client identifier.
    pub(crate) fn get(&self, id: &str, sessions: &Slab<Session>) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.start(id);
        // Terminates: at least one slot in eight is EMPTY.
        loop {
            match self.slots[i] {
                EMPTY => return None,
                GONE => {}
                k if sessions.get(k as usize).is_some_and(|s| &*s.client_id == id) => return Some(k),
                _ => {}
            }
            i = (i + 1) & mask;
        }
    }

    /// Indexes session `key` under its client identifier (the caller has checked that the
    /// identifier is not indexed yet).
    pub(crate) fn insert(&mut self, key: u32, sessions: &Slab<Session>) {
        if (self.used + 1) * 8 > self.slots.len() * 7 {
            self.rebuild(sessions);
        }
        let Some(s) = sessions.get(key as usize) else { return };
        let mask = self.slots.len() - 1;
        let mut i = self.start(&s.client_id);
        while self.slots[i] != EMPTY && self.slots[i] != GONE {
            i = (i + 1) & mask;
        }
        if self.slots[i] == EMPTY {
            self.used += 1;
        }
        self.slots[i] = key;
        self.len += 1;
    }

    /// Removes the entry of session `key`, indexed under `id`; false if there is none.
    pub(crate) fn remove(&mut self, id: &str, key: u32) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.start(id);
        loop {
            match self.slots[i] {
                EMPTY => return false,
                k if k == key => {
                    self.slots[i] = GONE;
                    self.len -= 1;
                    return true;
                }
                _ => {}
            }
            i = (i + 1) & mask;
        }
    }

    /// Re-inserts every live entry into a table sized for twice the live count (which also
    /// clears the `GONE` markers).
    fn rebuild(&mut self, sessions: &Slab<Session>) {
        let want = ((self.len + 1) * 2).next_power_of_two().max(8);
        let old = core::mem::replace(&mut self.slots, vec![EMPTY; want]);
        self.len = 0;
        self.used = 0;
        for k in old {
            if k != EMPTY && k != GONE {
                self.insert(k, sessions);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_finds_and_removes_through_growth_and_reuse() {
        let mut sessions = Slab::new();
        let mut idx = IdIndex::default();
        let mut keys = Vec::new();
        for i in 0..1000 {
            let k = sessions.insert(Session::new(format!("c{i}").into())) as u32;
            idx.insert(k, &sessions);
            keys.push(k);
        }
        assert_eq!(idx.len(), 1000);
        assert!(idx.slots.len() * 7 >= idx.used * 8);
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(idx.get(&format!("c{i}"), &sessions), Some(k));
        }
        assert_eq!(idx.get("nobody", &sessions), None);
        // Remove the even ones; their slab keys are reused by new identifiers.
        for i in (0..1000).step_by(2) {
            assert!(idx.remove(&format!("c{i}"), keys[i]));
            sessions.remove(keys[i] as usize);
        }
        assert!(!idx.remove("c0", keys[0]));
        for i in 0..500 {
            let k = sessions.insert(Session::new(format!("n{i}").into())) as u32;
            idx.insert(k, &sessions);
        }
        assert_eq!(idx.len(), 1000);
        for i in 0..1000 {
            let old = idx.get(&format!("c{i}"), &sessions);
            assert_eq!(old.is_some(), i % 2 == 1, "c{i}");
        }
        for i in 0..500 {
            let k = idx.get(&format!("n{i}"), &sessions).unwrap();
            assert_eq!(&*sessions[k as usize].client_id, format!("n{i}"));
        }
        // Churn: many insert/remove cycles must not fill the table with markers.
        for round in 0..20_000 {
            let k = sessions.insert(Session::new(format!("t{round}").into())) as u32;
            idx.insert(k, &sessions);
            assert_eq!(idx.get(&format!("t{round}"), &sessions), Some(k));
            assert!(idx.remove(&format!("t{round}"), k));
            sessions.remove(k as usize);
        }
        assert_eq!(idx.len(), 1000);
        assert!(idx.slots.len() <= 4096, "{} slots", idx.slots.len());
    }
}
