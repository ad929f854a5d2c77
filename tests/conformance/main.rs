//! Protocol scenarios through the socket-free broker: feed bytes, move the clock, assert the
//! exact bytes out. Modules by spec area.

#[path = "../common/mod.rs"]
mod common;

mod connect;
mod qos;
mod retain;
mod will;
mod malformed;
mod connect_ids;
mod mqtt5;
mod hooks;
mod ledger;
mod statements_v5;
mod statements_v311;
mod matrix_check;
mod output;
mod bounds;
mod budgets;
