//! The subscription trie: topic filters, level by level, in an arena. Each node holds the plain
//! subscriptions and the shared groups whose filter ends there; `+` and `#` children sit in
//! dedicated slots so a match needs one keyed lookup per visited node.
//!
//! Filters given to [`Trie`] must already be valid ([`validate_filter`](super::validate_filter)),
//! and shared filters already split ([`parse_shared`](super::parse_shared)). An invalid filter is
//! stored and removable, but what it matches is unspecified.

use super::arena::{Arena, NodeId};

/// Subscribers sharing one `$share/{group}/{filter}` subscription: each message goes to one of
/// them (MQTT 5.0 section 4.8.2). Members keep insertion order; the cursor picks them in turn.
#[derive(Debug)]
pub struct SharedGroup<K, V> {
    name: Box<str>,
    members: Vec<(K, V)>,
    cursor: usize,
}

impl<K, V> SharedGroup<K, V> {
    /// The ShareName.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The members and their subscription values, in the order they joined.
    pub fn members(&self) -> &[(K, V)] {
        &self.members
    }

    /// The index in [`members`](Self::members) of the next member in turn, advancing and wrapping
    /// the cursor; `None` when the group is empty. A caller that skips a member (offline, queue
    /// full) calls again, at most `members().len()` times.
    pub fn next_round_robin(&mut self) -> Option<usize> {
        if self.members.is_empty() {
            return None;
        }
        let i = if self.cursor < self.members.len() { self.cursor } else { 0 };
        self.cursor = (i + 1) % self.members.len();
        Some(i)
    }

    /// Removes member `i`, keeping the cursor on the member that was next.
    fn remove_at(&mut self, i: usize) -> (K, V) {
        let member = self.members.remove(i);
        if i < self.cursor {
            self.cursor -= 1;
        }
        if self.cursor >= self.members.len() {
            self.cursor = 0;
        }
        member
    }
}

/// One matching subscription entry, as visited by [`Trie::for_each_match`].
#[derive(Debug)]
pub enum Hit<'a, K, V> {
    /// A plain (non-shared) subscription: the subscriber and its value.
    Sub(K, &'a V),
    /// A shared group whose filter matches: pick a member with
    /// [`SharedGroup::next_round_robin`].
    Shared(&'a mut SharedGroup<K, V>),
}

/// What a trie node holds besides its keyed children.
#[derive(Debug)]
struct Node<K, V> {
    plus: Option<NodeId>,
    hash: Option<NodeId>,
    subs: Vec<(K, V)>,
    shared: Vec<SharedGroup<K, V>>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node { plus: None, hash: None, subs: Vec::new(), shared: Vec::new() }
    }
}

impl<K, V> Node<K, V> {
    fn is_bare(&self) -> bool {
        self.plus.is_none() && self.hash.is_none() && self.subs.is_empty() && self.shared.is_empty()
    }
}

/// Subscriptions keyed by topic filter and subscriber `K`, with a value `V` per entry (QoS,
/// options, subscription identifier…), matched against topic names without allocating.
///
/// One entry per (filter, key) and per (group, filter, key). A subscriber is visited once per
/// matching filter, so it can be visited several times for one topic: the broker merges.
#[derive(Debug)]
pub struct Trie<K: Copy + Eq, V> {
    arena: Arena<Node<K, V>>,
    len: usize,
    /// Reused depth-first stack: (node, byte offset of the next topic level, `None` once every
    /// level is consumed).
    stack: Vec<(NodeId, Option<usize>)>,
}

impl<K: Copy + Eq, V> Default for Trie<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq, V> Trie<K, V> {
    /// Heap bytes one node costs at most, besides its level's bytes (see
    /// [`crate::broker::cost::subscription`]): a filter of `n` levels adds at most `n` nodes.
    pub const NODE_BYTES: usize = super::arena::node_bytes(core::mem::size_of::<Node<K, V>>());

    /// Heap bytes one subscription's entry costs at most: its slot in a node's (or a group's)
    /// list, grown by doubling.
    pub const ENTRY_BYTES: usize = 2 * core::mem::size_of::<(K, V)>();

    /// Heap bytes one shared group costs at most besides its name's bytes: its slot in a node's
    /// list of groups, grown by doubling, and the allocation of its name.
    pub const GROUP_BYTES: usize = 2 * core::mem::size_of::<SharedGroup<K, V>>() + crate::budget::HEAP_HEADER;

    /// An empty trie (one root node).
    pub fn new() -> Self {
        Trie { arena: Arena::new(), len: 0, stack: Vec::new() }
    }

    /// Entries: plain subscriptions plus shared-group members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Live nodes, the root included: 1 for an empty trie.
    pub fn node_count(&self) -> usize {
        self.arena.live()
    }

    /// Subscribes `key` to `filter`; returns the previous value if `key` was already subscribed.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let id = self.path_or_insert(filter);
        let subs = &mut self.arena.data[id.idx()].subs;
        if let Some((_, v)) = subs.iter_mut().find(|(k, _)| *k == key) {
            return Some(core::mem::replace(v, value));
        }
        subs.push((key, value));
        self.len += 1;
        None
    }

    /// Unsubscribes `key` from `filter`, pruning nodes left empty; returns its value.
    pub fn remove(&mut self, filter: &str, key: K) -> Option<V> {
        let id = self.path(filter)?;
        let subs = &mut self.arena.data[id.idx()].subs;
        let i = subs.iter().position(|(k, _)| *k == key)?;
        let (_, v) = subs.swap_remove(i);
        self.len -= 1;
        self.prune(id, filter);
        Some(v)
    }

    /// The value of `key`'s plain subscription to `filter`.
    pub fn get(&self, filter: &str, key: K) -> Option<&V> {
        let id = self.path(filter)?;
        self.arena.data[id.idx()].subs.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Adds `key` to the shared group `group` on `filter` (the parts of `$share/{group}/{filter}`);
    /// returns the previous value if `key` was already a member. A new member joins the end of the
    /// round-robin order.
    pub fn insert_shared(&mut self, group: &str, filter: &str, key: K, value: V) -> Option<V> {
        let id = self.path_or_insert(filter);
        let groups = &mut self.arena.data[id.idx()].shared;
        let gi = match groups.iter().position(|g| *g.name == *group) {
            Some(gi) => gi,
            None => {
                groups.push(SharedGroup { name: group.into(), members: Vec::new(), cursor: 0 });
                groups.len() - 1
            }
        };
        let members = &mut groups[gi].members;
        if let Some((_, v)) = members.iter_mut().find(|(k, _)| *k == key) {
            return Some(core::mem::replace(v, value));
        }
        members.push((key, value));
        self.len += 1;
        None
    }

    /// Removes `key` from the shared group `group` on `filter`, dropping the group when it empties
    /// and pruning nodes left empty; returns its value.
    pub fn remove_shared(&mut self, group: &str, filter: &str, key: K) -> Option<V> {
        let id = self.path(filter)?;
        let groups = &mut self.arena.data[id.idx()].shared;
        let gi = groups.iter().position(|g| *g.name == *group)?;
        let i = groups[gi].members.iter().position(|(k, _)| *k == key)?;
        let (_, v) = groups[gi].remove_at(i);
        if groups[gi].members.is_empty() {
            groups.swap_remove(gi);
        }
        self.len -= 1;
        self.prune(id, filter);
        Some(v)
    }

    /// Calls `f` once for every entry whose filter matches the topic name `topic`: `+` matches one
    /// level, `#` its parent and every child level (`a/#` matches `a`), and wildcards at the first
    /// level never match a topic starting with `$` [MQTT-4.7.2-1].
    ///
    /// Iterative, with a stack kept in the trie: no allocation once the stack has grown to the
    /// deepest walk seen.
    pub fn for_each_match<F: FnMut(Hit<'_, K, V>)>(&mut self, topic: &str, mut f: F) {
        let mut stack = core::mem::take(&mut self.stack);
        stack.clear();
        stack.push((NodeId::ROOT, Some(0)));
        let dollar = topic.starts_with('$');
        while let Some((id, pos)) = stack.pop() {
            let (plus, hash) = {
                let node = &self.arena.data[id.idx()];
                (node.plus, node.hash)
            };
            let Some(pos) = pos else {
                // Every level consumed: filters ending here match, and so does `…/#`.
                self.emit(id, &mut f);
                if let Some(h) = hash {
                    self.emit(h, &mut f);
                }
                continue;
            };
            let rest = &topic[pos..];
            let (level, next) = match rest.find('/') {
                Some(i) => (&rest[..i], Some(pos + i + 1)),
                None => (rest, None),
            };
            if id != NodeId::ROOT || !dollar {
                // [MQTT-4.7.2-1]: skipped at the root for `$` topics.
                if let Some(h) = hash {
                    self.emit(h, &mut f);
                }
                if let Some(p) = plus {
                    stack.push((p, next));
                }
            }
            if let Some(c) = self.arena.child(id, level) {
                stack.push((c, next));
            }
        }
        self.stack = stack;
    }

    /// Visits the entries stored at `id`.
    fn emit<F: FnMut(Hit<'_, K, V>)>(&mut self, id: NodeId, f: &mut F) {
        let node = &mut self.arena.data[id.idx()];
        for (k, v) in &node.subs {
            f(Hit::Sub(*k, v));
        }
        for g in &mut node.shared {
            f(Hit::Shared(g));
        }
    }

    /// The child of `id` for one filter level.
    fn step(&self, id: NodeId, level: &str) -> Option<NodeId> {
        match level {
            "+" => self.arena.data[id.idx()].plus,
            "#" => self.arena.data[id.idx()].hash,
            _ => self.arena.child(id, level),
        }
    }

    /// The node where `filter` ends, if it exists.
    fn path(&self, filter: &str) -> Option<NodeId> {
        filter.split('/').try_fold(NodeId::ROOT, |id, level| self.step(id, level))
    }

    /// The node where `filter` ends, created as needed.
    fn path_or_insert(&mut self, filter: &str) -> NodeId {
        let mut id = NodeId::ROOT;
        for level in filter.split('/') {
            id = match self.step(id, level) {
                Some(c) => c,
                None if level == "+" || level == "#" => {
                    let c = self.arena.alloc(id);
                    let node = &mut self.arena.data[id.idx()];
                    *(if level == "+" { &mut node.plus } else { &mut node.hash }) = Some(c);
                    c
                }
                None => self.arena.child_or_insert(id, level),
            };
        }
        id
    }

    /// Frees `id` (where `filter` ends) and its ancestors while they hold nothing.
    fn prune(&mut self, mut id: NodeId, filter: &str) {
        for level in filter.rsplit('/') {
            let Some(parent) = self.arena.parent(id) else { return };
            if !self.arena.data[id.idx()].is_bare() || self.arena.has_children(id) {
                return;
            }
            match level {
                "+" => self.arena.data[parent.idx()].plus = None,
                "#" => self.arena.data[parent.idx()].hash = None,
                _ => self.arena.unlink(parent, level),
            }
            self.arena.free(id);
            id = parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::name::matches;
    use crate::topics::name::tests::{small_filters, small_topics};

    /// Plain keys hit for `topic`, sorted, plus (group name, member keys) for shared hits.
    fn hits(t: &mut Trie<u32, u32>, topic: &str) -> (Vec<u32>, Vec<(String, Vec<u32>)>) {
        let (mut subs, mut shared) = (Vec::new(), Vec::new());
        t.for_each_match(topic, |h| match h {
            Hit::Sub(k, _) => subs.push(k),
            Hit::Shared(g) => shared.push((g.name().to_string(), g.members().iter().map(|m| m.0).collect())),
        });
        subs.sort_unstable();
        shared.sort();
        (subs, shared)
    }

    fn keys(t: &mut Trie<u32, u32>, topic: &str) -> Vec<u32> {
        hits(t, topic).0
    }

    #[test]
    fn spec_examples_of_section_4_7_match_through_the_trie() {
        let mut t = Trie::new();
        let filters = [
            "sport/tennis/player1/#",
            "sport/#",
            "#",
            "sport/tennis/+",
            "sport/+",
            "+/+",
            "/+",
            "+",
            "$SYS/#",
            "+/monitor/Clients",
            "$SYS/monitor/+",
        ];
        for (k, f) in filters.iter().enumerate() {
            t.insert(f, k as u32, 0);
        }
        assert_eq!(keys(&mut t, "sport/tennis/player1"), [0, 1, 2, 3]);
        assert_eq!(keys(&mut t, "sport/tennis/player1/ranking"), [0, 1, 2]);
        assert_eq!(keys(&mut t, "sport/tennis/player1/score/wimbledon"), [0, 1, 2]);
        assert_eq!(keys(&mut t, "sport"), [1, 2, 7]);
        assert_eq!(keys(&mut t, "sport/"), [1, 2, 4, 5]);
        assert_eq!(keys(&mut t, "/finance"), [2, 5, 6]);
        assert_eq!(keys(&mut t, "$SYS/monitor/Clients"), [8, 10]);
        assert_eq!(keys(&mut t, "$SYS"), [8]);
    }

    #[test]
    fn plus_does_not_match_dollar_topics_at_first_level() {
        let mut t = Trie::new();
        t.insert("+/x", 1, 0);
        t.insert("#", 2, 0);
        t.insert("$a/+", 3, 0);
        t.insert("$a/#", 4, 0);
        assert_eq!(keys(&mut t, "$a/x"), [3, 4]);
        assert_eq!(keys(&mut t, "a/x"), [1, 2]);
    }

    #[test]
    fn the_trie_agrees_with_matches_on_every_small_filter_and_topic() {
        let (filters, topics) = (small_filters(), small_topics());
        let mut t = Trie::new();
        for (k, f) in filters.iter().enumerate() {
            assert_eq!(t.insert(f, k as u32, k as u32), None);
        }
        assert_eq!(t.len(), filters.len());
        for topic in topics {
            let mut got = Vec::new();
            t.for_each_match(topic, |h| {
                if let Hit::Sub(k, v) = h {
                    assert_eq!(k, *v);
                    got.push(k);
                }
            });
            let n = got.len();
            got.sort_unstable();
            got.dedup();
            assert_eq!(got.len(), n, "an entry was visited twice for {topic}");
            let want: Vec<u32> =
                (0..filters.len() as u32).filter(|&k| matches(&filters[k as usize], topic)).collect();
            assert_eq!(got, want, "topic {topic}");
        }
    }

    #[test]
    fn removing_every_filter_leaves_only_the_root_and_nodes_are_reused() {
        let filters = small_filters();
        let mut t = Trie::new();
        for (k, f) in filters.iter().enumerate() {
            t.insert(f, k as u32, 0);
            t.insert_shared("g", f, k as u32, 0);
        }
        let (nodes, slots) = (t.node_count(), t.arena.slots());
        assert!(nodes > filters.len() / 2);
        // Remove in a different order than inserted, checking the rest still matches.
        for (k, f) in filters.iter().enumerate().rev() {
            assert_eq!(t.remove(f, k as u32), Some(0));
            assert_eq!(t.remove(f, k as u32), None);
            assert_eq!(t.remove_shared("g", f, k as u32), Some(0));
            if k % 97 == 0 {
                for topic in small_topics() {
                    let want: Vec<u32> =
                        (0..k as u32).filter(|&j| matches(&filters[j as usize], topic)).collect();
                    assert_eq!(keys(&mut t, topic), want);
                }
            }
        }
        assert_eq!((t.len(), t.node_count()), (0, 1));
        for (k, f) in filters.iter().enumerate() {
            t.insert(f, k as u32, 0);
            t.insert_shared("g", f, k as u32, 0);
        }
        assert_eq!((t.node_count(), t.arena.slots()), (nodes, slots), "freed slots are reused");
    }

    #[test]
    fn insert_replaces_the_value_of_the_same_filter_and_key() {
        let mut t = Trie::new();
        assert_eq!(t.insert("a/+", 1u32, 10u32), None);
        assert_eq!(t.insert("a/+", 1, 11), Some(10));
        assert_eq!(t.insert("a/+", 2, 20), None);
        assert_eq!(t.insert_shared("g", "a/+", 1, 30), None);
        assert_eq!(t.insert_shared("g", "a/+", 1, 31), Some(30));
        assert_eq!((t.len(), t.get("a/+", 1), t.get("a/+", 3), t.get("a", 1)), (3, Some(&11), None, None));
        assert_eq!(t.remove("a/+", 1), Some(11));
        assert_eq!(t.remove("a/b", 2), None);
        assert_eq!(t.remove_shared("h", "a/+", 1), None);
        assert_eq!(t.remove_shared("g", "a/+", 1), Some(31));
        assert_eq!(t.remove("a/+", 2), Some(20));
        assert_eq!((t.len(), t.node_count()), (0, 1));
    }

    #[test]
    fn shared_groups_are_visited_once_per_matching_filter_beside_plain_subscribers() {
        let mut t = Trie::new();
        t.insert_shared("g", "a/+", 1, 0);
        t.insert_shared("g", "a/+", 2, 0);
        t.insert_shared("h", "a/+", 3, 0);
        t.insert_shared("g", "a/#", 4, 0);
        t.insert("a/+", 5, 0);
        let (subs, shared) = hits(&mut t, "a/b");
        assert_eq!(subs, [5]);
        assert_eq!(shared, [("g".into(), vec![1, 2]), ("g".into(), vec![4]), ("h".into(), vec![3])]);
        assert_eq!(hits(&mut t, "$a/b").1, []);
    }

    fn pick(t: &mut Trie<u32, u32>, topic: &str) -> Vec<u32> {
        let mut out = Vec::new();
        t.for_each_match(topic, |h| {
            if let Hit::Shared(g) = h {
                if let Some(i) = g.next_round_robin() {
                    out.push(g.members()[i].0);
                }
            }
        });
        out
    }

    #[test]
    fn shared_round_robin_cycles_and_stays_valid_when_members_leave() {
        let mut t = Trie::new();
        for k in 1..=4 {
            t.insert_shared("g", "s/+", k, 0);
        }
        let seq: Vec<u32> = (0..6).flat_map(|_| pick(&mut t, "s/x")).collect();
        assert_eq!(seq, [1, 2, 3, 4, 1, 2]);
        // Cursor is on 3. Removing a member before it keeps 3 next.
        t.remove_shared("g", "s/+", 1);
        assert_eq!(pick(&mut t, "s/x"), [3]);
        // Cursor is on 4, the last: removing it wraps to the first.
        t.remove_shared("g", "s/+", 4);
        assert_eq!(pick(&mut t, "s/x"), [2]);
        t.remove_shared("g", "s/+", 3);
        assert_eq!(pick(&mut t, "s/x"), [2]);
        t.insert_shared("g", "s/+", 9, 0);
        let seq: Vec<u32> = (0..3).flat_map(|_| pick(&mut t, "s/x")).collect();
        assert_eq!(seq, [2, 9, 2]);
        t.remove_shared("g", "s/+", 2);
        t.remove_shared("g", "s/+", 9);
        assert_eq!(pick(&mut t, "s/x"), []);
        assert_eq!(t.node_count(), 1);
    }

    #[test]
    fn round_robin_on_an_empty_or_shrunk_group_never_goes_out_of_bounds() {
        let mut g: SharedGroup<u32, ()> = SharedGroup { name: "g".into(), members: vec![], cursor: 0 };
        assert_eq!(g.next_round_robin(), None);
        g.members = vec![(1, ()), (2, ()), (3, ())];
        g.cursor = 2;
        g.remove_at(2);
        assert_eq!(g.next_round_robin(), Some(0));
        g.remove_at(1);
        assert_eq!(g.next_round_robin(), Some(0));
        assert_eq!(g.next_round_robin(), Some(0));
    }

    #[test]
    fn wide_nodes_switch_to_a_map_and_back_without_losing_children() {
        let mut t = Trie::new();
        let names: Vec<String> = (0..40).map(|i| format!("n{i}")).collect();
        for (k, n) in names.iter().enumerate() {
            t.insert(&format!("w/{n}"), k as u32, 0);
        }
        assert!(matches!(
            t.arena.links[t.path("w").map_or(0, |id| id.idx())].children,
            super::super::arena::Children::Many(_)
        ));
        for (k, n) in names.iter().enumerate() {
            assert_eq!(keys(&mut t, &format!("w/{n}")), [k as u32]);
        }
        for (k, n) in names.iter().enumerate().skip(2) {
            t.remove(&format!("w/{n}"), k as u32);
        }
        assert_eq!((keys(&mut t, "w/n0"), keys(&mut t, "w/n1"), t.node_count()), (vec![0], vec![1], 4));
    }

    #[test]
    fn match_reuses_its_stack() {
        let mut t = Trie::new();
        for f in small_filters() {
            t.insert(f, 0u32, 0u32);
        }
        t.for_each_match("a/b/$x/", |_| {});
        let cap = t.stack.capacity();
        for topic in small_topics() {
            t.for_each_match(topic, |_| {});
        }
        assert!(t.stack.capacity() <= cap.max(16));
    }
}

#[cfg(test)]
pub(crate) mod proptests {
    use super::*;
    use crate::topics::name::matches;
    use crate::topics::name::tests::{small_filters, small_topics};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};

    /// Live nodes a trie holding exactly `filters` must have: the root plus one per distinct
    /// level prefix.
    pub(crate) fn expected_nodes<'a>(filters: impl Iterator<Item = &'a str>) -> usize {
        let mut prefixes = HashSet::new();
        for f in filters {
            let mut end = 0;
            for level in f.split('/') {
                end += level.len();
                prefixes.insert(&f[..end]);
                end += 1;
            }
        }
        prefixes.len() + 1
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn random_subscribe_and_unsubscribe_sequences_agree_with_a_model(
            ops in prop::collection::vec((any::<bool>(), 0usize..935, 0u32..4, prop::option::of(0u8..2)), 1..80)
        ) {
            let filters = small_filters();
            let mut t: Trie<u32, usize> = Trie::new();
            let mut model: BTreeMap<(Option<u8>, usize, u32), usize> = BTreeMap::new();
            for (n, &(add, fi, key, group)) in ops.iter().enumerate() {
                let f = &filters[fi % filters.len()];
                let g = group.map(|g| if g == 0 { "g0" } else { "g1" });
                let got = match (add, g) {
                    (true, None) => t.insert(f, key, n),
                    (true, Some(g)) => t.insert_shared(g, f, key, n),
                    (false, None) => t.remove(f, key),
                    (false, Some(g)) => t.remove_shared(g, f, key),
                };
                let want = if add { model.insert((group, fi, key), n) } else { model.remove(&(group, fi, key)) };
                prop_assert_eq!(got, want);
            }
            prop_assert_eq!(t.len(), model.len());
            prop_assert_eq!(t.node_count(), expected_nodes(model.keys().map(|&(_, fi, _)| filters[fi].as_str())));
            for topic in small_topics() {
                let mut got = Vec::new();
                t.for_each_match(topic, |h| match h {
                    Hit::Sub(k, &v) => got.push((None, k, v)),
                    Hit::Shared(g) => {
                        let gi = if g.name() == "g0" { 0 } else { 1 };
                        got.extend(g.members().iter().map(|&(k, v)| (Some(gi), k, v)));
                    }
                });
                got.sort_unstable();
                let mut want: Vec<_> = model.iter()
                    .filter(|((_, fi, _), _)| matches(&filters[*fi], topic))
                    .map(|(&(g, _, k), &v)| (g, k, v))
                    .collect();
                want.sort_unstable();
                prop_assert_eq!(got, want, "topic {}", topic);
            }
        }
    }
}
