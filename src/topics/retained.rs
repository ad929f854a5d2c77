//! The retained-message index: at most one message per topic name, stored in a level trie so that
//! matching a filter walks only the branches the filter can reach (`a/+/c` never visits `b/…`).
//!
//! Topic names given to [`Retained`] must already be valid
//! ([`validate_name`](super::validate_name)), filters too ([`validate_filter`](super::validate_filter)).
//! Bounds on count and bytes are the broker's: it sees [`Retained::len`] and the replaced values.

use super::arena::{Arena, NodeId};

/// Where a walk stands in the filter.
#[derive(Debug, Clone, Copy)]
enum At {
    /// Byte offset of the next filter level to match.
    Level(usize),
    /// Every filter level matched: this node's message matches, its children do not.
    End,
    /// Below a `#`: this node and its whole subtree match.
    All,
}

/// Retained messages `R` keyed by topic name.
#[derive(Debug)]
pub struct Retained<R> {
    arena: Arena<Option<R>>,
    len: usize,
}

impl<R> Default for Retained<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> Retained<R> {
    /// Heap bytes one node costs at most, besides its level's bytes: a topic of `n` levels adds
    /// at most `n` nodes.
    pub const NODE_BYTES: usize = super::arena::node_bytes(core::mem::size_of::<Option<R>>());

    /// An empty index.
    pub fn new() -> Self {
        Retained { arena: Arena::new(), len: 0 }
    }

    /// Retained messages stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Live nodes, the root included: 1 for an empty index.
    pub fn node_count(&self) -> usize {
        self.arena.live()
    }

    /// Calls `f` with every retained message, in no particular order (a scan of the arena: for
    /// diagnostics).
    pub fn for_each_value(&self, f: impl FnMut(&R)) {
        self.arena.data.iter().flatten().for_each(f);
    }

    /// Stores `r` for `topic`; returns the message it replaces.
    pub fn set(&mut self, topic: &str, r: R) -> Option<R> {
        let id = topic.split('/').fold(NodeId::ROOT, |id, level| self.arena.child_or_insert(id, level));
        let old = self.arena.data[id.idx()].replace(r);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// The message retained for `topic`.
    pub fn get(&self, topic: &str) -> Option<&R> {
        self.find(topic).and_then(|id| self.arena.data[id.idx()].as_ref())
    }

    /// Removes and returns the message retained for `topic`, pruning nodes left empty.
    pub fn remove(&mut self, topic: &str) -> Option<R> {
        let mut id = self.find(topic)?;
        let old = self.arena.data[id.idx()].take()?;
        self.len -= 1;
        for level in topic.rsplit('/') {
            let Some(parent) = self.arena.parent(id) else { break };
            if self.arena.data[id.idx()].is_some() || self.arena.has_children(id) {
                break;
            }
            self.arena.unlink(parent, level);
            self.arena.free(id);
            id = parent;
        }
        Some(old)
    }

    /// Calls `f(topic, message)` for every retained message whose topic the (valid) `filter`
    /// matches, walking only the branches the filter reaches. Wildcards at the first level skip
    /// topics starting with `$` [MQTT-4.7.2-1]. The topic is rebuilt in a buffer reused across
    /// the walk; the walk allocates its stack and that buffer once per call.
    pub fn for_each_match(&self, filter: &str, mut f: impl FnMut(&str, &R)) {
        self.walk(filter, &mut f);
    }

    /// The walk behind [`for_each_match`](Self::for_each_match); returns the nodes visited.
    fn walk(&self, filter: &str, f: &mut impl FnMut(&str, &R)) -> usize {
        // `path` holds "/level/level…" for the node being visited; callers get `&path[1..]`.
        let mut path = String::new();
        // (node, its level, length of `path` at its parent, where the filter stands)
        let mut stack: Vec<(NodeId, &str, usize, At)> = vec![(NodeId::ROOT, "", 0, At::Level(0))];
        let mut visited = 0;
        while let Some((id, level, plen, at)) = stack.pop() {
            visited += 1;
            let root = id == NodeId::ROOT;
            if !root {
                path.truncate(plen);
                path.push('/');
                path.push_str(level);
            }
            let here = path.len();
            let value = self.arena.data[id.idx()].as_ref();
            match at {
                At::End => {
                    if let Some(r) = value {
                        f(&path[1..], r);
                    }
                }
                At::All => {
                    if let Some(r) = value {
                        f(&path[1..], r);
                    }
                    stack.extend(self.arena.children(id).map(|(l, c)| (c, l, here, At::All)));
                }
                At::Level(pos) => {
                    let rest = &filter[pos..];
                    let (flevel, next) = match rest.find('/') {
                        Some(i) => (&rest[..i], At::Level(pos + i + 1)),
                        None => (rest, At::End),
                    };
                    // [MQTT-4.7.2-1]: a first-level wildcard skips `$` topics.
                    let visible = |l: &str| !(root && l.starts_with('$'));
                    match flevel {
                        "#" => {
                            // `a/#` matches `a` itself: the parent level.
                            if let (Some(r), false) = (value, root) {
                                f(&path[1..], r);
                            }
                            let kids = self.arena.children(id).filter(|(l, _)| visible(l));
                            stack.extend(kids.map(|(l, c)| (c, l, here, At::All)));
                        }
                        "+" => {
                            let kids = self.arena.children(id).filter(|(l, _)| visible(l));
                            stack.extend(kids.map(|(l, c)| (c, l, here, next)));
                        }
                        _ => {
                            if let Some(c) = self.arena.child(id, flevel) {
                                stack.push((c, flevel, here, next));
                            }
                        }
                    }
                }
            }
        }
        visited
    }

    /// Keeps only the messages for which `keep(topic, &mut message)` returns true (expiry sweeps),
    /// then frees the nodes left empty. Visits every message once.
    pub fn retain_mut(&mut self, mut keep: impl FnMut(&str, &mut R) -> bool) {
        let Arena { links, data, .. } = &mut self.arena;
        let mut path = String::new();
        let mut stack: Vec<(NodeId, &str, usize)> = vec![(NodeId::ROOT, "", 0)];
        let mut dropped = 0;
        while let Some((id, level, plen)) = stack.pop() {
            if id != NodeId::ROOT {
                path.truncate(plen);
                path.push('/');
                path.push_str(level);
            }
            let slot = &mut data[id.idx()];
            if let Some(r) = slot {
                if !keep(&path[1..], r) {
                    *slot = None;
                    dropped += 1;
                }
            }
            let here = path.len();
            stack.extend(links[id.idx()].children.iter().map(|(l, c)| (c, l, here)));
        }
        self.len -= dropped;
        if dropped > 0 {
            self.prune_all();
        }
    }

    /// Frees every node that holds no message and has no children, bottom-up.
    fn prune_all(&mut self) {
        // (node, children already visited)
        let mut stack = vec![(NodeId::ROOT, false)];
        while let Some((id, visited)) = stack.pop() {
            if !visited {
                stack.push((id, true));
                stack.extend(self.arena.children(id).map(|(_, c)| (c, false)));
                continue;
            }
            let mut children = core::mem::take(&mut self.arena.links[id.idx()].children);
            children.retain(|c| {
                let empty = self.arena.data[c.idx()].is_none() && !self.arena.has_children(c);
                if empty {
                    self.arena.free(c);
                }
                !empty
            });
            self.arena.links[id.idx()].children = children;
        }
    }

    /// The node of `topic`, if it exists.
    fn find(&self, topic: &str) -> Option<NodeId> {
        topic.split('/').try_fold(NodeId::ROOT, |id, level| self.arena.child(id, level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::name::matches;
    use crate::topics::name::tests::{small_filters, small_topics};

    fn topics_for(r: &Retained<usize>, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        r.for_each_match(filter, |t, _| out.push(t.to_string()));
        out.sort();
        out
    }

    #[test]
    fn set_get_replace_and_remove_one_message_per_topic() {
        let mut r = Retained::new();
        assert_eq!(r.set("a/b", 1), None);
        assert_eq!(r.set("a/b", 2), Some(1));
        assert_eq!(r.set("a", 3), None);
        assert_eq!(
            (r.len(), r.get("a/b"), r.get("a"), r.get("a/c"), r.get("a/b/c")),
            (2, Some(&2), Some(&3), None, None)
        );
        assert_eq!(r.remove("a/b/c"), None);
        assert_eq!(r.remove("a"), Some(3));
        assert_eq!(r.remove("a"), None);
        assert_eq!((r.len(), r.node_count()), (1, 3));
        assert_eq!(r.remove("a/b"), Some(2));
        assert_eq!((r.len(), r.node_count()), (0, 1));
    }

    #[test]
    fn spec_examples_and_dollar_rules_select_retained_topics() {
        let mut r = Retained::new();
        for (i, t) in [
            "sport",
            "sport/",
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "/finance",
            "$SYS/broker/load",
            "$SYS",
        ]
        .iter()
        .enumerate()
        {
            r.set(t, i);
        }
        assert_eq!(
            topics_for(&r, "sport/tennis/player1/#"),
            ["sport/tennis/player1", "sport/tennis/player1/ranking"]
        );
        assert_eq!(
            topics_for(&r, "sport/#"),
            ["sport", "sport/", "sport/tennis/player1", "sport/tennis/player1/ranking"]
        );
        assert_eq!(topics_for(&r, "sport/+"), ["sport/"]);
        assert_eq!(topics_for(&r, "+/+"), ["/finance", "sport/"]);
        assert_eq!(topics_for(&r, "/+"), ["/finance"]);
        assert_eq!(topics_for(&r, "+"), ["sport"]);
        assert_eq!(topics_for(&r, "#").len(), 5);
        assert_eq!(topics_for(&r, "$SYS/#"), ["$SYS", "$SYS/broker/load"]);
        assert_eq!(topics_for(&r, "+/broker/+"), Vec::<String>::new());
    }

    #[test]
    fn retained_matching_agrees_with_matches_on_every_small_filter_and_topic() {
        let topics = small_topics();
        let mut r = Retained::new();
        for (i, t) in topics.iter().enumerate() {
            r.set(t, i);
        }
        for f in small_filters() {
            let mut got = Vec::new();
            r.for_each_match(f, |t, &i| {
                assert_eq!(t, topics[i], "rebuilt topic");
                got.push(i);
            });
            got.sort_unstable();
            let want: Vec<usize> = (0..topics.len()).filter(|&i| matches(f, &topics[i])).collect();
            assert_eq!(got, want, "filter {f}");
        }
    }

    #[test]
    fn a_plus_filter_walks_only_matching_branches() {
        let mut r = Retained::new();
        for i in 0..1000 {
            r.set(&format!("b/{i}/c"), i);
        }
        for i in 0..3 {
            r.set(&format!("a/{i}/c"), i);
            r.set(&format!("a/{i}/d"), i);
        }
        let visited = r.walk("a/+/c", &mut |_, _| {});
        // root, a, a/0..2, a/0..2/c
        assert_eq!(visited, 8);
        assert_eq!(r.walk("b/7/c", &mut |_, _| {}), 4);
    }

    #[test]
    fn retain_mut_drops_rejected_messages_and_prunes_their_nodes() {
        let topics = small_topics();
        let mut r = Retained::new();
        for (i, t) in topics.iter().enumerate() {
            r.set(t, i);
        }
        let full = r.node_count();
        let mut seen = 0;
        r.retain_mut(|t, i| {
            assert_eq!(t, topics[*i]);
            seen += 1;
            *i += 1_000_000;
            !t.contains("$x")
        });
        assert_eq!(seen, topics.len());
        let kept: Vec<&String> = topics.iter().filter(|t| !t.contains("$x")).collect();
        assert_eq!(r.len(), kept.len());
        assert!(r.node_count() < full);
        for t in topics {
            assert_eq!(r.get(t).is_some(), !t.contains("$x"), "{t}");
        }
        assert_eq!(r.get("a/b"), Some(&(1_000_000 + topics.iter().position(|t| t == "a/b").unwrap_or(0))));
        r.retain_mut(|_, _| false);
        assert_eq!((r.len(), r.node_count()), (0, 1));
        for (i, t) in topics.iter().enumerate() {
            r.set(t, i);
        }
        assert_eq!((r.node_count(), r.arena.slots()), (full, full), "freed slots are reused");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::topics::name::matches;
    use crate::topics::name::tests::{small_filters, small_topics};
    use crate::topics::trie::proptests::expected_nodes;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        #[test]
        fn random_set_and_remove_sequences_agree_with_a_model(
            ops in prop::collection::vec((any::<bool>(), 0usize..339), 1..80),
            filter in 0usize..935,
        ) {
            let (topics, filters) = (small_topics(), small_filters());
            let mut r = Retained::new();
            let mut model = BTreeMap::new();
            for (n, &(set, ti)) in ops.iter().enumerate() {
                let t = &topics[ti % topics.len()];
                if set {
                    prop_assert_eq!(r.set(t, n), model.insert(t.clone(), n));
                } else {
                    prop_assert_eq!(r.remove(t), model.remove(t));
                }
            }
            prop_assert_eq!(r.len(), model.len());
            prop_assert_eq!(r.node_count(), expected_nodes(model.keys().map(String::as_str)));
            let f = &filters[filter % filters.len()];
            let mut got = Vec::new();
            r.for_each_match(f, |t, &n| got.push((t.to_string(), n)));
            got.sort();
            let want: Vec<_> = model.iter().filter(|(t, _)| matches(f, t)).map(|(t, &n)| (t.clone(), n)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
