//! Per-client MQTT state that outlives a connection: subscriptions, the bounded outbound queue,
//! the outbound inflight window with packet-id allocation, inbound QoS 2 state, the will and
//! session expiry. Pure data driven by the broker; no sockets, no clock reads, no hooks.

use crate::message::MessageRef;
use crate::budget::{Budget, HEAP_HEADER};
use crate::packets::{PacketId, QoS, SubOptions};
use crate::time::Instant;
use std::collections::VecDeque;
use std::rc::Rc;

/// Subscription identifiers that apply to one delivery. Rarely more than one, so no allocation
/// for the common cases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SubIdList {
    /// None.
    #[default]
    None,
    /// One identifier.
    One(u32),
    /// Several (overlapping subscriptions with identifiers).
    Many(Box<[u32]>),
}

impl SubIdList {
    /// As a slice.
    pub fn as_slice(&self) -> &[u32] {
        match self {
            SubIdList::None => &[],
            SubIdList::One(x) => core::slice::from_ref(x),
            SubIdList::Many(v) => v,
        }
    }

    /// Adds an identifier.
    pub fn push(&mut self, id: u32) {
        *self = match core::mem::take(self) {
            SubIdList::None => SubIdList::One(id),
            SubIdList::One(a) => SubIdList::Many(Box::new([a, id])),
            SubIdList::Many(v) => {
                let mut v = v.into_vec();
                v.push(id);
                SubIdList::Many(v.into())
            }
        }
    }
}

/// One message on its way to this session's client.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The shared message.
    pub msg: MessageRef,
    /// QoS it is delivered at: min(published, granted) [MQTT-3.8.4-8].
    pub qos: QoS,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Subscription identifiers of the matching subscriptions [MQTT-3.3.4-3].
    pub sub_ids: SubIdList,
}

impl Delivery {
    /// Bytes this delivery accounts for in its session's queue (`max_queued_bytes`) and in
    /// `queue_memory`: the message ([`crate::message::Message::cost`], which covers the
    /// delivery's own slot) and the identifiers of several matching subscriptions, a list whose
    /// length the subscriber chooses.
    pub fn cost(&self) -> usize {
        let ids = match &self.sub_ids {
            SubIdList::Many(v) => v.len() * core::mem::size_of::<u32>() + HEAP_HEADER,
            _ => 0,
        };
        self.msg.cost() + ids
    }
}

/// Where an outbound QoS 1/2 message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutState {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    AwaitPubAck,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    AwaitPubRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitPubComp,
}

/// An outbound QoS 1/2 message in flight.
#[derive(Clone, Debug)]
pub struct Inflight {
    /// Its packet identifier.
    pub pid: PacketId,
    /// The delivery.
    pub d: Delivery,
    /// Where it stands.
    pub state: OutState,
    /// Whether it has been written to the connection at least once (resends carry DUP).
    pub sent: bool,
}

/// The will, owned.
#[derive(Clone, Debug)]
pub struct WillMessage {
    /// The message to publish.
    pub msg: MessageRef,
    /// Will delay interval in seconds (5.0).
    pub delay_secs: u32,
}

impl WillMessage {
    /// Bytes this will accounts for in `max_will_bytes`: its message, counted as for the queues.
    pub fn cost(&self) -> usize {
        self.msg.cost()
    }
}

/// A subscription as the session remembers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The filter as subscribed, including any `$share/group/` prefix.
    pub filter: Box<str>,
    /// Options.
    pub opts: SubOptions,
    /// Subscription identifier, if any.
    pub id: Option<u32>,
}

/// Why a message was not queued, or what was dropped to queue it.
#[derive(Clone, Debug)]
pub enum QueueFull {
    /// The new message was dropped.
    DroppedNew,
    /// The oldest messages were dropped to make room (these, oldest first); the new one is queued.
    DroppedOldest(Vec<MessageRef>),
}

/// A session. Kept small (an idle session is most of what a connection costs): the state
/// few sessions use lives in [`SessionExtra`], boxed on first use.
#[derive(Debug)]
pub struct Session {
    /// Client identifier (one allocation shared with the connection and the client-id index).
    pub client_id: Rc<str>,
    /// The connection this session is attached to, while connected.
    pub conn: Option<crate::ids::ClientId>,
    /// Session expiry interval in seconds (0: ends with the connection; u32::MAX: never).
    pub expiry_secs: u32,
    /// Subscriptions.
    pub subs: Vec<Subscription>,
    /// Routing scratch: the epoch this session was last added to a fan-out, and its index.
    pub(crate) route_mark: (u32, u32),
    /// Queue and inflight window: `None` until the first delivery, and again once both are
    /// empty at a compaction (an idle session does not pay for them).
    flow: Option<Box<Flow>>,
    /// Will, offline deadlines and inbound QoS 2 state: `None` until first needed.
    extra: Option<Box<SessionExtra>>,
}

/// The outbound message flow of a session: its queue and its inflight window.
#[derive(Debug, Default)]
pub struct Flow {
    /// Messages waiting for the inflight window or for the client to come back.
    pub queue: VecDeque<Delivery>,
    /// Bytes accounted to `queue` ([`Delivery::cost`] of each).
    pub queued_bytes: usize,
    /// Bytes accounted to `inflight`, the same way.
    pub inflight_bytes: usize,
    /// Outbound QoS 1/2 messages in flight, in send order. A deque: acknowledgements mostly
    /// arrive in order, so taking the acknowledged entry is a pop at the front, not a memmove
    /// of the whole window per PUBACK.
    pub inflight: VecDeque<Inflight>,
    /// Every inflight entry before this index has been sent (a hint for [`Session::next_unsent`],
    /// so the pump does not scan the whole window per call).
    resend_from: u32,
    next_pid: u16,
    /// False while every inflight id is below `next_pid + 1` (ids are allocated in increasing
    /// order and the counter has not wrapped since the window was last empty): the next id is
    /// then free without scanning the window. Set when the counter wraps or entries are restored.
    pid_wrapped: bool,
}

/// A set of packet identifiers kept sorted: membership is a binary search, an entry costs 2
/// bytes, and clients mostly use increasing identifiers, so an insert is mostly a push at the end.
/// The caller bounds its size (the receive maximum).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PidSet(Vec<PacketId>);

impl PidSet {
    /// True when `pid` is in the set.
    pub fn contains(&self, pid: PacketId) -> bool {
        self.0.binary_search(&pid).is_ok()
    }

    /// Adds `pid`; false when it was there already.
    pub fn insert(&mut self, pid: PacketId) -> bool {
        match self.0.binary_search(&pid) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, pid);
                true
            }
        }
    }

    /// Removes `pid`; false when it was not there.
    pub fn remove(&mut self, pid: PacketId) -> bool {
        match self.0.binary_search(&pid) {
            Ok(i) => {
                self.0.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Number of identifiers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The identifiers, in increasing order.
    pub fn as_slice(&self) -> &[PacketId] {
        &self.0
    }

    /// Gives the buffer back when the set is empty.
    pub fn shrink_if_empty(&mut self) {
        if self.0.is_empty() {
            self.0 = Vec::new();
        }
    }
}

/// The parts of a session that most sessions never use.
#[derive(Debug, Default)]
pub struct SessionExtra {
    /// Inbound QoS 2 packet identifiers that got PUBREC and await PUBREL.
    pub inbound_qos2: PidSet,
    /// The will of the current (or last) connection.
    pub will: Option<WillMessage>,
    /// When a delayed will is due (offline session only).
    pub will_at: Option<Instant>,
    /// When an offline session expires.
    pub expires_at: Option<Instant>,
    /// The deadline of this session's pending timer entry, if one is pending (only wills and
    /// expiry arm one).
    pub timer_at: Option<Instant>,
}

impl Session {
    /// A new, empty session.
    pub fn new(client_id: Rc<str>) -> Session {
        Session {
            client_id,
            conn: None,
            expiry_secs: 0,
            subs: Vec::new(),
            route_mark: (0, 0),
            flow: None,
            extra: None,
        }
    }

    /// The rarely used state, if it was ever needed.
    pub fn extra(&self) -> Option<&SessionExtra> {
        self.extra.as_deref()
    }

    /// The same, mutable.
    pub fn extra_mut_if_any(&mut self) -> Option<&mut SessionExtra> {
        self.extra.as_deref_mut()
    }

    /// Frees the queue and the inflight window (and their buffers) when both are empty, and the
    /// inbound QoS 2 set's buffer when no identifier awaits PUBREL.
    pub fn shrink_if_empty(&mut self) {
        // Nothing queued and nothing in flight: no packet identifier is in use either, so the
        // counter may start again from 1.
        if self.flow.as_ref().is_some_and(|f| f.queue.is_empty() && f.inflight.is_empty()) {
            self.flow = None;
        }
        if let Some(e) = self.extra.as_mut() {
            e.inbound_qos2.shrink_if_empty();
        }
    }

    /// The will of the current (or last) connection.
    pub fn will(&self) -> Option<&WillMessage> {
        self.extra.as_ref()?.will.as_ref()
    }

    /// Replaces the will (`None`: clears it) and returns the old one. The old will's bytes go
    /// back to `budget` (`max_will_bytes`) and the new one's are taken whether they fit or not:
    /// the caller checked that they fit before accepting the CONNECT.
    pub fn set_will(&mut self, will: Option<WillMessage>, budget: &mut Budget) -> Option<WillMessage> {
        if will.is_none() && self.will().is_none() {
            return None;
        }
        if let Some(w) = &will {
            budget.force(w.cost());
        }
        let old = core::mem::replace(&mut self.extra_mut().will, will);
        if let Some(w) = &old {
            budget.give(w.cost());
        }
        old
    }

    /// When a delayed will is due.
    pub fn will_at(&self) -> Option<Instant> {
        self.extra.as_ref()?.will_at
    }

    /// When the offline session expires.
    pub fn expires_at(&self) -> Option<Instant> {
        self.extra.as_ref()?.expires_at
    }

    /// Inbound QoS 2 packet identifiers awaiting PUBREL, in increasing order.
    pub fn inbound_qos2(&self) -> &[PacketId] {
        self.extra.as_ref().map_or(&[], |e| e.inbound_qos2.as_slice())
    }

    /// The deadline of this session's pending timer entry, if one is pending.
    pub fn timer_at(&self) -> Option<Instant> {
        self.extra.as_ref()?.timer_at
    }

    /// The same, allocated on first use.
    pub fn extra_mut(&mut self) -> &mut SessionExtra {
        self.extra.get_or_insert_with(Default::default)
    }

    /// The queue and inflight window, if this session ever had any.
    pub fn flow(&self) -> Option<&Flow> {
        self.flow.as_deref()
    }

    /// The same, allocated on first use.
    pub fn flow_mut(&mut self) -> &mut Flow {
        self.flow.get_or_insert_with(Default::default)
    }

    /// Queues a delivery within the bounds (see [`Flow::enqueue`]).
    pub fn enqueue(&mut self, d: Delivery, max_msgs: usize, max_bytes: usize, drop_oldest: bool, budget: &mut Budget) -> Result<(), QueueFull> {
        self.flow_mut().enqueue(d, max_msgs, max_bytes, drop_oldest, budget)
    }

    /// Takes the next queued delivery; its bytes go back to `budget` (a caller that keeps it
    /// takes them again with [`Session::requeue_front`] or [`Session::push_inflight`]).
    pub fn pop(&mut self, budget: &mut Budget) -> Option<Delivery> {
        self.flow.as_mut()?.pop(budget)
    }

    /// Puts a delivery just taken with [`Session::pop`] back at the head of the queue.
    pub fn requeue_front(&mut self, d: Delivery, budget: &mut Budget) {
        let f = self.flow_mut();
        let cost = d.cost();
        f.queued_bytes += cost;
        budget.force(cost);
        f.queue.push_front(d);
    }

    /// Adds a message sent to the client to the inflight window. Its bytes are taken from
    /// `budget` whether they fit or not: a delivery taken from the queue just gave them back,
    /// and one sent straight away was checked before it was sent.
    pub fn push_inflight(&mut self, i: Inflight, budget: &mut Budget) {
        let f = self.flow_mut();
        let cost = i.d.cost();
        f.inflight_bytes += cost;
        budget.force(cost);
        f.inflight.push_back(i);
    }

    /// Bytes of the queue and the inflight window together: what this session holds of
    /// `queue_memory`.
    pub fn held_bytes(&self) -> usize {
        self.flow.as_ref().map_or(0, |f| f.queued_bytes + f.inflight_bytes)
    }

    /// A free packet identifier (see [`Flow::alloc_pid`]).
    pub fn alloc_pid(&mut self) -> Option<PacketId> {
        self.flow_mut().alloc_pid()
    }

    /// Adds an inflight entry restored from storage (its bytes taken from `budget`).
    pub fn push_restored(&mut self, i: Inflight, budget: &mut Budget) {
        self.flow_mut().push_restored(i, budget)
    }

    /// Index of the first inflight entry not yet sent, if any.
    pub fn next_unsent(&mut self) -> Option<usize> {
        self.flow.as_mut()?.next_unsent()
    }

    /// Marks every inflight entry unsent (resent with DUP on the new connection).
    pub fn mark_unsent(&mut self) {
        if let Some(f) = self.flow.as_mut() {
            f.mark_unsent();
        }
    }

    /// The inflight entry with this identifier.
    pub fn inflight_mut(&mut self, pid: PacketId) -> Option<&mut Inflight> {
        self.flow.as_mut()?.inflight_mut(pid)
    }

    /// Removes and returns the inflight entry with this identifier; its bytes go back to
    /// `budget`.
    pub fn take_inflight(&mut self, pid: PacketId, budget: &mut Budget) -> Option<Inflight> {
        self.flow.as_mut()?.take_inflight(pid, budget)
    }

    /// Drops everything a clean start discards, keeping the client id; the bytes its queue and
    /// window held go back to `budget` (subscriptions and will are the caller's to give back).
    pub fn clear(&mut self, budget: &mut Budget) {
        budget.give(self.held_bytes());
        let conn = self.conn;
        *self = Session::new(self.client_id.clone());
        self.conn = conn;
    }
}

impl Flow {
    /// Queues a delivery within the bounds: `max_msgs` and `max_bytes` for this queue, `budget`
    /// (`queue_memory`) for every session's queue and window together. QoS 0 finding the queue
    /// full is dropped; QoS 1/2 follows `drop_oldest`, which drops this queue's oldest messages
    /// only when that makes room. `Err` reports a drop (the caller counts it).
    pub fn enqueue(&mut self, d: Delivery, max_msgs: usize, max_bytes: usize, drop_oldest: bool, budget: &mut Budget) -> Result<(), QueueFull> {
        let cost = d.cost();
        // An empty queue always takes one message, so a message larger than the byte bound
        // (but within the packet size) is still delivered; the bound limits accumulation, and
        // `budget` bounds what all those single messages add up to.
        let full = |s: &Flow, b: &Budget| {
            s.queue.len() >= max_msgs || (!s.queue.is_empty() && s.queued_bytes + cost > max_bytes) || !b.fits(cost)
        };
        if full(self, budget) {
            // Dropping every message of this queue would not make room: drop the new one
            // rather than lose the old ones too.
            let room = budget.used() - self.queued_bytes.min(budget.used()) + cost <= budget.limit();
            if d.qos == QoS::AtMostOnce || !drop_oldest || max_msgs == 0 || !room {
                return Err(QueueFull::DroppedNew);
            }
            let mut dropped = Vec::new();
            while full(self, budget) {
                match self.pop(budget) {
                    Some(old) => dropped.push(old.msg),
                    None => break,
                }
            }
            self.push(d, cost, budget);
            return Err(QueueFull::DroppedOldest(dropped));
        }
        self.push(d, cost, budget);
        Ok(())
    }

    fn push(&mut self, d: Delivery, cost: usize, budget: &mut Budget) {
        self.queued_bytes += cost;
        budget.force(cost);
        self.queue.push_back(d);
    }

    /// Takes the next queued delivery; its bytes go back to `budget`.
    pub fn pop(&mut self, budget: &mut Budget) -> Option<Delivery> {
        let d = self.queue.pop_front()?;
        let cost = d.cost();
        self.queued_bytes -= cost;
        budget.give(cost);
        Some(d)
    }

    /// Allocates a packet identifier not in use by an inflight message; `None` when all
    /// 65535 are taken (cannot happen while the window is at most 65535).
    pub fn alloc_pid(&mut self) -> Option<PacketId> {
        if self.inflight.is_empty() {
            self.pid_wrapped = false;
        }
        for _ in 0..u16::MAX {
            self.next_pid = self.next_pid.wrapping_add(1);
            let Some(pid) = PacketId::new(self.next_pid) else {
                self.pid_wrapped = true;
                continue;
            };
            if self.pid_wrapped {
                let (mut used, mut above) = (false, false);
                for i in &self.inflight {
                    used |= i.pid == pid;
                    above |= i.pid.get() > pid.get();
                }
                if !above {
                    // The ids from before the wrap are all acknowledged: ordered again.
                    self.pid_wrapped = false;
                }
                if used {
                    continue;
                }
            }
            return Some(pid);
        }
        None
    }

    /// Adds an inflight entry restored from storage (any id: `alloc_pid` scans from now on);
    /// its bytes are taken from `budget` (the caller checked that they fit).
    pub fn push_restored(&mut self, i: Inflight, budget: &mut Budget) {
        self.pid_wrapped = true;
        let cost = i.d.cost();
        self.inflight_bytes += cost;
        budget.force(cost);
        self.inflight.push_back(i);
    }

    /// Index of the first inflight entry not yet sent (after a reconnect or restore), if any.
    pub fn next_unsent(&mut self) -> Option<usize> {
        let from = (self.resend_from as usize).min(self.inflight.len());
        match self.inflight.iter().skip(from).position(|i| !i.sent) {
            Some(i) => {
                self.resend_from = (from + i) as u32;
                Some(from + i)
            }
            None => {
                self.resend_from = self.inflight.len() as u32;
                None
            }
        }
    }

    /// Marks every inflight entry unsent: they are resent (with DUP) on the new connection.
    pub fn mark_unsent(&mut self) {
        for i in self.inflight.iter_mut() {
            i.sent = false;
        }
        self.resend_from = 0;
    }

    /// The inflight entry with this identifier.
    pub fn inflight_mut(&mut self, pid: PacketId) -> Option<&mut Inflight> {
        self.inflight.iter_mut().find(|i| i.pid == pid)
    }

    /// Removes and returns the inflight entry with this identifier; its bytes go back to
    /// `budget`.
    pub fn take_inflight(&mut self, pid: PacketId, budget: &mut Budget) -> Option<Inflight> {
        let i = self.inflight.iter().position(|i| i.pid == pid)?;
        if i < self.resend_from as usize {
            self.resend_from -= 1;
        }
        let gone = self.inflight.remove(i)?;
        let cost = gone.d.cost();
        self.inflight_bytes -= cost;
        budget.give(cost);
        Some(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use crate::message::{Message, MessageProps};
    use std::rc::Rc;

    fn delivery(qos: QoS, len: usize) -> Delivery {
        let msg = Rc::new(Message {
            topic: "t".into(),
            payload: vec![0; len].into(),
            qos,
            retain: false,
            props: MessageProps::default(),
            expires_at: None,
            has_expiry: false,
            origin: None,
        });
        Delivery { msg, qos, retain: false, sub_ids: SubIdList::None }
    }

    #[test]
    fn a_full_queue_drops_qos0_and_keeps_the_old_messages() {
        let mut s = Session::new("c".into());
        let mut b = Budget::new(usize::MAX);
        assert!(s.enqueue(delivery(QoS::AtLeastOnce, 1), 1, 1 << 20, true, &mut b).is_ok());
        assert!(matches!(s.enqueue(delivery(QoS::AtMostOnce, 1), 1, 1 << 20, true, &mut b), Err(QueueFull::DroppedNew)));
        assert_eq!(s.flow_mut().queue.len(), 1);
        assert_eq!(s.flow_mut().queue[0].qos, QoS::AtLeastOnce);
    }

    #[test]
    fn drop_oldest_makes_room_for_a_qos1_message() {
        let mut s = Session::new("c".into());
        let mut b = Budget::new(usize::MAX);
        s.enqueue(delivery(QoS::AtLeastOnce, 1), 2, 1 << 20, true, &mut b).unwrap();
        s.enqueue(delivery(QoS::AtLeastOnce, 2), 2, 1 << 20, true, &mut b).unwrap();
        match s.enqueue(delivery(QoS::AtLeastOnce, 3), 2, 1 << 20, true, &mut b) {
            Err(QueueFull::DroppedOldest(old)) => assert_eq!(old.iter().map(|m| m.payload.len()).collect::<Vec<_>>(), [1]),
            other => panic!("{other:?}"),
        }
        let lens: Vec<_> = s.flow_mut().queue.iter().map(|d| d.msg.payload.len()).collect();
        assert_eq!(lens, [2, 3]);
    }

    #[test]
    fn the_byte_bound_counts_payloads_and_is_returned_on_pop() {
        let mut s = Session::new("c".into());
        let mut b = Budget::new(usize::MAX);
        let one = delivery(QoS::AtLeastOnce, 100).msg.cost();
        s.enqueue(delivery(QoS::AtLeastOnce, 100), 10, one, false, &mut b).unwrap();
        assert!(matches!(s.enqueue(delivery(QoS::AtLeastOnce, 100), 10, one, false, &mut b), Err(QueueFull::DroppedNew)));
        s.pop(&mut b).unwrap();
        // an empty queue takes a message even when it alone exceeds the byte bound
        s.enqueue(delivery(QoS::AtLeastOnce, 1000), 10, one, false, &mut b).unwrap();
        s.pop(&mut b).unwrap();
        assert_eq!(s.flow_mut().queued_bytes, 0);
    }

    #[test]
    fn the_shared_budget_bounds_queues_and_windows_together_and_gets_every_byte_back() {
        let cost = delivery(QoS::AtLeastOnce, 100).cost();
        let mut b = Budget::new(3 * cost);
        let (mut s1, mut s2) = (Session::new("a".into()), Session::new("b".into()));
        s1.enqueue(delivery(QoS::AtLeastOnce, 100), 10, 1 << 20, false, &mut b).unwrap();
        s2.enqueue(delivery(QoS::AtLeastOnce, 100), 10, 1 << 20, false, &mut b).unwrap();
        // Into the window: the bytes stay taken while the message waits for its PUBACK.
        let d = s1.pop(&mut b).unwrap();
        let pid = s1.alloc_pid().unwrap();
        s1.push_inflight(Inflight { pid, d, state: OutState::AwaitPubAck, sent: true }, &mut b);
        s1.enqueue(delivery(QoS::AtLeastOnce, 100), 10, 1 << 20, false, &mut b).unwrap();
        assert_eq!(b.used(), 3 * cost);
        // Full for every session, even one whose own queue is empty, and drop-oldest cannot
        // make room from a queue that holds nothing.
        let mut s3 = Session::new("c".into());
        assert!(matches!(s3.enqueue(delivery(QoS::AtLeastOnce, 1), 10, 1 << 20, true, &mut b), Err(QueueFull::DroppedNew)));
        assert!(matches!(s2.enqueue(delivery(QoS::AtLeastOnce, 100), 10, 1 << 20, true, &mut b), Err(QueueFull::DroppedOldest(_))));
        assert_eq!(b.used(), 3 * cost, "its own oldest made room");
        assert_eq!(s1.held_bytes(), 2 * cost);
        s1.take_inflight(pid, &mut b).unwrap();
        s1.clear(&mut b);
        s2.clear(&mut b);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn several_subscription_identifiers_count_in_a_deliverys_cost() {
        let mut d = delivery(QoS::AtLeastOnce, 10);
        let bare = d.cost();
        for id in 0..100 {
            d.sub_ids.push(id);
        }
        assert_eq!(d.cost(), bare + 400 + HEAP_HEADER);
    }

    #[test]
    fn the_packet_id_set_stays_sorted_and_finds_ids_in_any_insertion_order() {
        let mut set = PidSet::default();
        for n in [5u16, 1, 65535, 3, 5] {
            set.insert(PacketId::new(n).unwrap());
        }
        let ids: Vec<u16> = set.as_slice().iter().map(|p| p.get()).collect();
        assert_eq!(ids, [1, 3, 5, 65535], "sorted, no duplicate");
        assert!(set.contains(PacketId::new(65535).unwrap()) && !set.contains(PacketId::new(2).unwrap()));
        assert!(set.remove(PacketId::new(3).unwrap()) && !set.remove(PacketId::new(3).unwrap()));
        assert_eq!(set.len(), 3);
        for n in [1u16, 5, 65535] {
            set.remove(PacketId::new(n).unwrap());
        }
        set.shrink_if_empty();
        assert_eq!(set.0.capacity(), 0);
    }

    #[test]
    fn packet_ids_skip_ids_in_flight_and_never_zero() {
        let mut s = Session::new("c".into());
        let p1 = s.alloc_pid().unwrap();
        s.flow_mut().inflight.push_back(Inflight { pid: p1, d: delivery(QoS::AtLeastOnce, 1), state: OutState::AwaitPubAck, sent: true });
        s.flow_mut().next_pid = u16::MAX; // wrap: next would be 0 (skipped) then 1 (in use) then 2
        assert_eq!(s.alloc_pid().unwrap().get(), 2);
    }

    #[test]
    fn restored_ids_are_skipped_and_acks_in_any_order_keep_the_resend_hint() {
        let mut s = Session::new("c".into());
        let mut b = Budget::new(usize::MAX);
        for p in [1u16, 2, 3] {
            let pid = PacketId::new(p).unwrap();
            s.push_restored(Inflight { pid, d: delivery(QoS::AtLeastOnce, 1), state: OutState::AwaitPubAck, sent: false }, &mut b);
        }
        assert_eq!(s.alloc_pid().unwrap().get(), 4);
        assert_eq!(s.next_unsent(), Some(0));
        s.flow_mut().inflight[0].sent = true;
        assert_eq!(s.next_unsent(), Some(1));
        s.take_inflight(PacketId::new(1).unwrap(), &mut b).unwrap();
        assert_eq!(s.next_unsent(), Some(0));
        assert_eq!(s.flow_mut().inflight[0].pid.get(), 2);
        s.flow_mut().inflight[0].sent = true;
        s.flow_mut().inflight[1].sent = true;
        assert_eq!(s.next_unsent(), None);
        s.mark_unsent();
        assert_eq!(s.next_unsent(), Some(0));
        // fresh ids after the window empties: no scan needed, still never an id in use
        s.flow_mut().inflight.clear();
        let a = s.alloc_pid().unwrap();
        s.flow_mut().inflight.push_back(Inflight { pid: a, d: delivery(QoS::AtLeastOnce, 1), state: OutState::AwaitPubAck, sent: true });
        assert_ne!(s.alloc_pid().unwrap(), a);
    }
}
