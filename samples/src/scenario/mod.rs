//! Scenarios: seeded fleets of hosts that write one EVTX file per host and channel, with the
//! truth (findings a correct analysis reports) and the exact counts of what was written.

mod emit;
mod emit_server;
mod fleet;
mod generate;
mod noise;
mod plan;
mod rng;
mod server_plan;
mod truth;

pub use emit::{Emit, Logon, sids, sockaddr_storage};
pub use fleet::{BUILD_23H2, BUILD_24H2, BUILD_WIN10, DNS_SUFFIX, DOMAIN, Host};
pub use generate::{
    DEFAULT_START, FilePlan, GenerateOptions, GenerateSummary, channel_file_name, file_events,
    generate, plan_files, plan_scenario, scenario_events, scenario_names,
};
pub use noise::BENIGN_SERVERS;
pub use rng::Rng;
pub use truth::{
    FALLBACK_WINDOW_SECS, Finding, SIGNING_BUILD, SPOOF_MIN_CLIENTS, SPOOF_WINDOW_SECS, Upgrade,
    analyze, normalize_server, sockaddr_ip,
};
