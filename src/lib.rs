//! opsync: keeps secrets flowing out of 1Password Connect, safely, through sandboxed plugins.

pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod connect;
pub mod connect_dev;
pub mod delivery;
pub mod detect;
pub mod domain;
pub mod human_time;
pub mod own_events;
pub mod plugin;
pub mod plugin_cmd;
pub mod poll_loop;
pub mod rotation;
pub mod route;
pub mod schedule;
pub mod shutdown;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod tls_trust;
