//! The byte budgets in use: what clients make the broker hold now, as counted by the budgets,
//! and the same recounted from the structures (a test compares the two: a path that forgot to
//! give bytes back shows as a difference).

use super::conn::ConnExtra;
use super::{cost, Broker};

/// What clients make the broker hold now, per bound of [`crate::Options::memory_terms`] that is
/// enforced at run time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Bytes of session queues and inflight windows (`queue_memory`).
    pub queued: usize,
    /// Bytes of subscriptions (`max_subscription_bytes`).
    pub subscriptions: usize,
    /// Bytes of wills (`max_will_bytes`).
    pub wills: usize,
    /// Bytes of topic alias tables (`max_alias_bytes`).
    pub aliases: usize,
    /// Bytes of retained messages (`max_retained_bytes`).
    pub retained: usize,
    /// Enhanced authentications in progress before CONNACK (at most `max_handshakes`).
    pub authenticating: usize,
}

impl Broker {
    /// What clients make the broker hold now, as the budgets count it.
    pub fn held(&self) -> Held {
        Held {
            queued: self.queued.used(),
            subscriptions: self.sub_bytes.used(),
            wills: self.will_bytes.used(),
            aliases: self.alias_bytes.used(),
            retained: self.retained_bytes,
            authenticating: self.authenticating,
        }
    }

    /// [`Broker::held`] recounted from the sessions, connections and retained messages
    /// themselves (linear in all of them: for tests and diagnostics). Equal to `held()` unless
    /// some path took or gave back the wrong amount.
    pub fn held_recounted(&self) -> Held {
        let mut h = Held::default();
        for (_, s) in self.sessions.iter() {
            if let Some(f) = s.flow() {
                h.queued += f.queue.iter().map(|d| d.cost()).sum::<usize>();
                h.queued += f.inflight.iter().map(|i| i.d.cost()).sum::<usize>();
            }
            h.subscriptions += s.subs.iter().map(|x| cost::subscription(&x.filter)).sum::<usize>();
            h.wills += s.will().map_or(0, cost::will);
        }
        for (_, c) in self.conns.iter() {
            let Some(e) = c.extra.as_deref() else { continue };
            h.aliases += e.aliases_in.len() * cost::ALIAS_SLOT;
            h.aliases += e.aliases_in.iter().flatten().map(|t| cost::alias_in(t)).sum::<usize>();
            h.aliases += e.aliases_out.keys().map(|t| cost::alias_out(t)).sum::<usize>();
            h.authenticating += usize::from(e.pending_connect.is_some());
        }
        self.retained.for_each_value(|m| h.retained += cost::retained(m));
        h
    }

    /// Whether `id` has completed its CONNECT (the server then ends what the connection's
    /// transport held before CONNECT outside the budgets: its place among its listener's
    /// `max_handshakes`, a WebSocket's `max_connect_size` message limit).
    pub fn is_connected(&self, id: super::ClientId) -> bool {
        self.conn(id).is_some_and(|c| c.state == super::conn::ConnState::Connected)
    }

    /// Gives back what a released connection's rarely used state held of the budgets: its
    /// topic alias tables and its place among the enhanced authentications in progress.
    pub(super) fn release_extra(&mut self, extra: Option<&ConnExtra>) {
        let Some(e) = extra else { return };
        self.alias_bytes.give(e.alias_bytes);
        if e.pending_connect.is_some() {
            self.authenticating = self.authenticating.saturating_sub(1);
        }
    }
}

/// Shortens `s` to the first character that ends past `max` bytes, so that a string longer
/// than `max` stays longer than `max` (and is refused as such) but holds at most `max` + 4.
pub(super) fn clip_over(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let end = (max + 1..=s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    s.truncate(end);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_clipped_string_stays_over_the_bound_on_a_character_boundary() {
        let mut s = "é".repeat(100);
        super::clip_over(&mut s, 10);
        assert_eq!(s, "é".repeat(6), "12 bytes: the first character past 10");
        let mut short = "abc".to_string();
        super::clip_over(&mut short, 3);
        assert_eq!(short, "abc");
    }
}
