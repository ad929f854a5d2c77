//! Node storage shared by the subscription trie and the retained index: nodes live in `Vec`s
//! addressed by [`NodeId`], freed nodes go on a free list and are reused, and each node's keyed
//! children hold the level strings (each stored once, in the parent's child table).
//!
//! Structure (`links`) and payload (`data`) are parallel vectors so that a walk can borrow the
//! level strings of `links` while it mutates `data`.

use std::collections::HashMap;

/// Index of a node in an [`Arena`]; [`NodeId::ROOT`] is never freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NodeId(u32);

impl NodeId {
    /// The root: the node before the first level.
    pub(super) const ROOT: NodeId = NodeId(0);

    pub(super) fn idx(self) -> usize {
        self.0 as usize
    }
}

/// Up to this many keyed children are kept in a scanned `Vec`; one more switches to a `HashMap`,
/// and shrinking to half of it switches back. benches/trie.rs with 4, 8 and 16 gave results
/// within its noise (a shared, loaded 2-core machine); re-measure on a quiet target board.
const FEW_MAX: usize = 8;

/// What a node's entry in its parent's child table costs at most: 24 bytes (level pointer and
/// id) in a `Vec` of at most [`FEW_MAX`] grown by doubling (48), or in a `HashMap` kept at
/// most 7/8 full and grown by doubling, with a control byte (under 64).
pub(super) const CHILD_ENTRY_BYTES: usize = 64;

/// What one node costs at most besides its level's bytes and its payload `T`: its links and
/// payload slots in the arena's vectors and its free-list slot (all grown by doubling, so
/// counted twice), its entry in its parent's child table, and the allocation of its level.
pub(super) const fn node_bytes(payload: usize) -> usize {
    2 * (core::mem::size_of::<Links>() + payload + core::mem::size_of::<NodeId>()) + CHILD_ENTRY_BYTES + crate::budget::HEAP_HEADER
}

/// A node's keyed children: few are scanned (string lengths compare without touching the heap),
/// many are hashed (std's SipHash, keyed per process: levels come from clients).
#[derive(Debug)]
pub(super) enum Children {
    Few(Vec<(Box<str>, NodeId)>),
    Many(HashMap<Box<str>, NodeId>),
}

impl Default for Children {
    fn default() -> Self {
        Children::Few(Vec::new())
    }
}

impl Children {
    pub(super) fn get(&self, level: &str) -> Option<NodeId> {
        match self {
            Children::Few(v) => v.iter().find(|(k, _)| **k == *level).map(|&(_, id)| id),
            Children::Many(m) => m.get(level).copied(),
        }
    }

    fn insert(&mut self, level: &str, id: NodeId) {
        match self {
            Children::Few(v) if v.len() < FEW_MAX => v.push((level.into(), id)),
            Children::Few(v) => {
                let mut m: HashMap<Box<str>, NodeId> = v.drain(..).collect();
                m.insert(level.into(), id);
                *self = Children::Many(m);
            }
            Children::Many(m) => {
                m.insert(level.into(), id);
            }
        }
    }

    fn remove(&mut self, level: &str) -> Option<NodeId> {
        let id = match self {
            Children::Few(v) => {
                let i = v.iter().position(|(k, _)| **k == *level)?;
                v.swap_remove(i).1
            }
            Children::Many(m) => m.remove(level)?,
        };
        self.maybe_shrink();
        Some(id)
    }

    /// Keeps the children for which `keep` returns true.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(NodeId) -> bool) {
        match self {
            Children::Few(v) => v.retain(|&(_, id)| keep(id)),
            Children::Many(m) => m.retain(|_, id| keep(*id)),
        }
        self.maybe_shrink();
    }

    fn maybe_shrink(&mut self) {
        if let Children::Many(m) = self {
            if m.len() <= FEW_MAX / 2 {
                *self = Children::Few(m.drain().collect());
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        match self {
            Children::Few(v) => v.is_empty(),
            Children::Many(m) => m.is_empty(),
        }
    }

    /// `(level, child)` pairs, in no particular order.
    pub(super) fn iter(&self) -> ChildIter<'_> {
        match self {
            Children::Few(v) => ChildIter::Few(v.iter()),
            Children::Many(m) => ChildIter::Many(m.iter()),
        }
    }
}

/// Iterator over a node's `(level, child)` pairs.
pub(super) enum ChildIter<'a> {
    Few(core::slice::Iter<'a, (Box<str>, NodeId)>),
    Many(std::collections::hash_map::Iter<'a, Box<str>, NodeId>),
}

impl<'a> Iterator for ChildIter<'a> {
    type Item = (&'a str, NodeId);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ChildIter::Few(it) => it.next().map(|(k, id)| (&**k, *id)),
            ChildIter::Many(it) => it.next().map(|(k, id)| (&**k, *id)),
        }
    }
}

/// A node's place in the tree.
#[derive(Debug, Default)]
pub(super) struct Links {
    pub(super) parent: Option<NodeId>,
    pub(super) children: Children,
}

/// The arena: `links[i]` and `data[i]` describe node `i`; `free` lists reusable slots.
#[derive(Debug)]
pub(super) struct Arena<T> {
    pub(super) links: Vec<Links>,
    pub(super) data: Vec<T>,
    free: Vec<NodeId>,
}

impl<T: Default> Arena<T> {
    /// An arena holding only the root.
    pub(super) fn new() -> Self {
        Arena { links: vec![Links::default()], data: vec![T::default()], free: Vec::new() }
    }

    /// Nodes in use, the root included.
    pub(super) fn live(&self) -> usize {
        self.links.len() - self.free.len()
    }

    /// Slots ever allocated (live plus free).
    #[cfg(test)]
    pub(super) fn slots(&self) -> usize {
        self.links.len()
    }

    pub(super) fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.links[id.idx()].parent
    }

    pub(super) fn child(&self, id: NodeId, level: &str) -> Option<NodeId> {
        self.links[id.idx()].children.get(level)
    }

    pub(super) fn children(&self, id: NodeId) -> ChildIter<'_> {
        self.links[id.idx()].children.iter()
    }

    pub(super) fn has_children(&self, id: NodeId) -> bool {
        !self.links[id.idx()].children.is_empty()
    }

    /// A fresh node under `parent` (not yet linked into any child table), reusing a freed slot.
    ///
    /// # Panics
    /// When more than `u32::MAX` nodes would be live, which memory makes unreachable.
    pub(super) fn alloc(&mut self, parent: NodeId) -> NodeId {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let Ok(raw) = u32::try_from(self.links.len()) else {
                    panic!("topic arena exceeds u32::MAX nodes");
                };
                self.links.push(Links::default());
                self.data.push(T::default());
                NodeId(raw)
            }
        };
        self.links[id.idx()].parent = Some(parent);
        id
    }

    /// The keyed child `level` of `id`, created if missing.
    pub(super) fn child_or_insert(&mut self, id: NodeId, level: &str) -> NodeId {
        if let Some(c) = self.child(id, level) {
            return c;
        }
        let c = self.alloc(id);
        self.links[id.idx()].children.insert(level, c);
        c
    }

    /// Drops the keyed child `level` of `id` from its child table (the child is not freed).
    pub(super) fn unlink(&mut self, id: NodeId, level: &str) {
        self.links[id.idx()].children.remove(level);
    }

    /// Returns a node's slot to the free list, dropping its payload and child table.
    pub(super) fn free(&mut self, id: NodeId) {
        debug_assert!(id != NodeId::ROOT);
        self.links[id.idx()] = Links::default();
        self.data[id.idx()] = T::default();
        self.free.push(id);
    }
}
