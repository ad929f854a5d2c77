//! Verdicts of PBKDF2 hash checks, so that a device reconnecting with the right password does
//! not cost another PBKDF2 run on the event loop.
//!
//! An entry is HMAC-SHA256, under a key drawn at random when the first entry is added, of the
//! hash string and the password (never the password itself), with the verdict: matches or not.
//! The verdict depends on nothing else (not the user name, the client or the rule), so a password
//! shared by many devices under one rule costs one PBKDF2 run for all of them. The ledger adds
//! entries only for a password that matched some hash (its match, and its misses before the
//! match): a wrong password is hashed every time, and the broker's failure throttle bounds those.
//!
//! At most [`CAPACITY`] entries; a full cache replaces one by the clock algorithm (an entry hit
//! since the hand last passed it is spared once). The cache belongs to one ledger: a reloaded
//! ledger starts with an empty one.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Most verified passwords remembered.
pub const CAPACITY: usize = 256;

type Digest = [u8; 32];

/// The cache. `Verified::default()` is empty and draws its key on first use.
#[derive(Default)]
pub(crate) struct Verified {
    /// `None` until the first insertion; stays `None` when the system's random number generator
    /// fails (then nothing is cached).
    key: Option<hmac::Key>,
    /// (digest, the password matches the hash).
    entries: Vec<(Digest, bool)>,
    /// Hit since the clock hand last passed (one per entry).
    referenced: Vec<bool>,
    hand: usize,
    /// PBKDF2 derivations run by the ledger owning this cache.
    pub(crate) runs: u64,
}

impl Verified {
    /// The digest of (`hash`, `password`), or `None` when there is no key yet.
    fn digest(&self, hash: &str, password: &[u8]) -> Option<Digest> {
        let key = self.key.as_ref()?;
        let mut ctx = hmac::Context::with_key(key);
        // The hash string's length first, so no two (hash, password) pairs share an input.
        ctx.update(&(hash.len() as u64).to_be_bytes());
        ctx.update(hash.as_bytes());
        ctx.update(password);
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Some(out)
    }

    /// The remembered verdict of `password` against `hash`: `Some(true)` when it matches.
    pub(crate) fn lookup(&mut self, hash: &str, password: &[u8]) -> Option<bool> {
        let d = self.digest(hash, password)?;
        // Every entry is compared in full, without stopping at the first match.
        let mut found = None;
        for (i, (e, matches)) in self.entries.iter().enumerate() {
            if constant_time_eq(e, &d) {
                found = Some((i, *matches));
            }
        }
        let (i, matches) = found?;
        if let Some(r) = self.referenced.get_mut(i) {
            *r = true;
        }
        Some(matches)
    }

    /// Remembers whether `password` matches `hash`.
    pub(crate) fn insert(&mut self, hash: &str, password: &[u8], matches: bool) {
        if self.key.is_none() {
            let mut k = [0u8; 32];
            if SystemRandom::new().fill(&mut k).is_err() {
                return;
            }
            self.key = Some(hmac::Key::new(hmac::HMAC_SHA256, &k));
        }
        let Some(d) = self.digest(hash, password) else { return };
        let entry = (d, matches);
        if self.entries.len() < CAPACITY {
            self.entries.push(entry);
            self.referenced.push(false);
            return;
        }
        // Clock: clear the mark of each referenced entry passed; replace the first unmarked.
        loop {
            let i = self.hand % self.entries.len();
            self.hand = (i + 1) % self.entries.len();
            match self.referenced.get_mut(i) {
                Some(r) if *r => *r = false,
                _ => {
                    self.entries[i] = entry;
                    if let Some(r) = self.referenced.get_mut(i) {
                        *r = false;
                    }
                    return;
                }
            }
        }
    }

    /// Entries remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A clone starts empty (with its own key and no runs counted): what it would remember is cheap
/// to learn again.
impl Clone for Verified {
    fn clone(&self) -> Self {
        Verified::default()
    }
}

/// The cache (and the count) is not part of a ledger's value: any two are equal.
impl PartialEq for Verified {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Verified {}

impl core::fmt::Debug for Verified {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Verified").field("entries", &self.entries.len()).field("runs", &self.runs).finish()
    }
}

/// Equality of two digests whose time does not depend on where they differ.
fn constant_time_eq(a: &Digest, b: &Digest) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_verified_pair_is_remembered() {
        let mut v = Verified::default();
        assert_eq!(v.lookup("h1", b"pw"), None);
        v.insert("h1", b"pw", true);
        v.insert("h0", b"pw", false);
        assert_eq!(v.lookup("h1", b"pw"), Some(true));
        assert_eq!(v.lookup("h0", b"pw"), Some(false));
        assert_eq!(v.lookup("h1", b"pW"), None);
        assert_eq!(v.lookup("h2", b"pw"), None);
        // The length prefix keeps ("h1p", "w") apart from ("h1", "pw").
        assert_eq!(v.lookup("h1p", b"w"), None);
        assert_eq!(v.clone().lookup("h1", b"pw"), None, "a clone starts empty");
    }

    #[test]
    fn a_full_cache_replaces_an_entry_not_hit_since_the_hand_passed() {
        let mut v = Verified::default();
        for i in 0..CAPACITY {
            v.insert("h", format!("pw{i}").as_bytes(), true);
        }
        assert_eq!(v.len(), CAPACITY);
        // pw0 is hit, so the first replacement spares it and takes pw1.
        assert_eq!(v.lookup("h", b"pw0"), Some(true));
        v.insert("h", b"new", true);
        assert_eq!(v.len(), CAPACITY);
        assert_eq!(v.lookup("h", b"new"), Some(true));
        assert_eq!(v.lookup("h", b"pw0"), Some(true));
        assert_eq!(v.lookup("h", b"pw1"), None);
        assert_eq!(v.lookup("h", b"pw2"), Some(true));
    }
}
