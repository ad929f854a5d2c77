//! What the command line chooses ([`Params`], [`Scenario`]) and what a run reports
//! ([`Report`]): shared by the scenarios and the soak, which import it and not each other.

use std::fmt::Display;
use std::time::Duration;

use crate::engine::Settings;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    FanIn,
    FanOut,
    Pairs,
    /// Pairs with a publisher connection and a subscriber connection per client (like
    /// mqtt-stresser): the shape that stalled the global buffer budget (issue 13).
    PairsSplit,
    Latency,
    Connections,
    Retained,
    Soak,
}

impl Scenario {
    pub const ALL: [(&'static str, Scenario); 8] = [
        ("fanin", Scenario::FanIn),
        ("fanout", Scenario::FanOut),
        ("pairs", Scenario::Pairs),
        ("pairs-split", Scenario::PairsSplit),
        ("latency", Scenario::Latency),
        ("connections", Scenario::Connections),
        ("retained", Scenario::Retained),
        ("soak", Scenario::Soak),
    ];

    pub fn name(self) -> &'static str {
        Scenario::ALL.iter().find(|(_, s)| *s == self).map_or("?", |(n, _)| n)
    }
}

/// Everything the command line chooses.
#[derive(Clone, Debug)]
pub struct Params {
    pub scenario: Scenario,
    pub settings: Settings,
    /// Messages published in total (split evenly over the publishers).
    pub messages: u32,
    pub timeout: Duration,
    /// Give up waiting for deliveries after this long without one, once every publisher is done.
    pub drain: Duration,
    pub broker_pid: Option<u32>,
    /// Publishers (fanin), subscribers (fanout), clients (pairs, connections).
    pub fanin_publishers: u32,
    pub fanout_subscribers: u32,
    pub clients: u32,
    /// Messages per second for the latency scenario; per publisher in the soak.
    pub rate: f64,
    /// Soak: how long the load runs (setup and the final drain come on top).
    pub duration: Duration,
    /// Soak: PINGREQs per second from the flooding attacker.
    pub flood_rate: f64,
    /// Soak: a probe check unanswered this long ends the run as a stall.
    pub stall_abort: Duration,
    /// Soak: seed of the reproducible random choices (lifecycle times and kinds).
    pub seed: u64,
}

/// Named measurements in a fixed order, plus failure reasons.
#[derive(Default)]
pub struct Report {
    pub fields: Vec<(&'static str, String)>,
    pub failures: Vec<String>,
}

impl Report {
    pub fn set(&mut self, key: &'static str, value: impl Display) {
        self.fields.push((key, value.to_string()));
    }
    pub fn secs(&mut self, key: &'static str, d: f64) {
        self.set(key, format!("{d:.3}"));
    }
    pub fn rate(&mut self, key: &'static str, n: f64, secs: f64) {
        self.set(key, format!("{:.0}", if secs > 0.0 { n / secs } else { 0.0 }));
    }
}

