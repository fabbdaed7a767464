//! The hosts of a scenario: names, addresses, OS builds, users.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::writer::{FileTime, Sid};

/// The AD domain every generated host belongs to.
pub const DOMAIN: &str = "CORP";
/// The DNS suffix of every generated host.
pub const DNS_SUFFIX: &str = "corp.example.net";
/// The domain SID prefix (sub-authorities after 21).
pub const DOMAIN_SID: [u32; 3] = [3_623_811_015, 3_361_044_348, 30_300_820];
/// The first build that audits guest logons (Windows 11 24H2 / Server 2025).
pub const BUILD_24H2: u32 = 26100;
/// Windows 11 23H2.
pub const BUILD_23H2: u32 = 22631;
/// Windows 10 22H2.
pub const BUILD_WIN10: u32 = 19045;

/// One Windows host that writes logs.
#[derive(Debug, Clone)]
pub struct Host {
    /// Short name, also the directory name (`WKS-003`).
    pub name: String,
    /// `System/Computer` (`WKS-003.corp.example.net`).
    pub computer: Arc<str>,
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// OS build at the start.
    pub build: u32,
    /// Later boots, in time order: when, and the build it runs from then on (an upgrade when
    /// the build rises, a rollback when it falls).
    pub reboots: Vec<(FileTime, u32)>,
    /// The user who works on it (`user07`).
    pub user: String,
    /// That user's SID.
    pub user_sid: Sid,
    /// Whether it is a server (file server) rather than a workstation.
    pub server: bool,
}

impl Host {
    /// A workstation `WKS-{index+1:03}`.
    pub fn workstation(index: usize, build: u32) -> Host {
        let n = index + 1;
        let name = format!("WKS-{n:03}");
        let user = format!("user{n:02}");
        Host {
            computer: format!("{name}.{DNS_SUFFIX}").into(),
            name,
            ip: Ipv4Addr::new(10, 10, (n / 200) as u8, (n % 200 + 20) as u8),
            build,
            reboots: Vec::new(),
            user_sid: domain_sid(1100 + n as u32),
            user,
            server: false,
        }
    }

    /// A Windows file server.
    pub fn file_server(name: &str, ip: Ipv4Addr) -> Host {
        Host {
            name: name.to_string(),
            computer: format!("{name}.{DNS_SUFFIX}").into(),
            ip,
            build: BUILD_24H2,
            reboots: Vec::new(),
            user: "svc-backup".to_string(),
            user_sid: domain_sid(1050),
            server: true,
        }
    }

    /// The OS build running at `t`.
    pub fn build_at(&self, t: FileTime) -> u32 {
        self.reboots
            .iter()
            .take_while(|(when, _)| *when <= t)
            .last()
            .map_or(self.build, |(_, build)| *build)
    }
}

/// A SID in the domain.
pub fn domain_sid(rid: u32) -> Sid {
    Sid::new(5, &[21, DOMAIN_SID[0], DOMAIN_SID[1], DOMAIN_SID[2], rid])
}

/// The fleet: `count` workstations, with builds chosen by `build_of(index)`.
pub fn workstations(count: usize, build_of: impl Fn(usize) -> u32) -> Vec<Host> {
    (0..count)
        .map(|i| Host::workstation(i, build_of(i)))
        .collect()
}
