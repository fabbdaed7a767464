//! Payload value shapes as Windows writes them: SOCKADDR bytes and NTSTATUS codes.

use std::net::{Ipv4Addr, Ipv6Addr};

/// NTSTATUS values used in the generated events.
pub mod ntstatus {
    /// STATUS_SUCCESS.
    pub const SUCCESS: u32 = 0x0000_0000;
    /// The guest logon was blocked by the client (believed STATUS_SMB_GUEST_LOGON_BLOCKED).
    pub const SMB_GUEST_LOGON_BLOCKED: u32 = 0xC05D_0002;
    /// STATUS_LOGON_FAILURE.
    pub const LOGON_FAILURE: u32 = 0xC000_006D;
    /// STATUS_ACCOUNT_RESTRICTION (used as 4625 Status with a disabled account).
    pub const ACCOUNT_RESTRICTION: u32 = 0xC000_006E;
    /// STATUS_WRONG_PASSWORD.
    pub const WRONG_PASSWORD: u32 = 0xC000_006A;
    /// STATUS_ACCOUNT_DISABLED.
    pub const ACCOUNT_DISABLED: u32 = 0xC000_0072;
    /// STATUS_ACCESS_DENIED.
    pub const ACCESS_DENIED: u32 = 0xC000_0022;
    /// STATUS_BAD_NETWORK_NAME.
    pub const BAD_NETWORK_NAME: u32 = 0xC000_00CC;
    /// STATUS_NETWORK_NAME_DELETED.
    pub const NETWORK_NAME_DELETED: u32 = 0xC000_00C9;
    /// STATUS_IO_TIMEOUT.
    pub const IO_TIMEOUT: u32 = 0xC000_00B5;
}

/// An IPv4 SOCKADDR: family 2 (little-endian), port (big-endian), address, zero padding to `len`
/// bytes (16 for SOCKADDR_IN, 128 for SOCKADDR_STORAGE).
pub fn sockaddr_v4(ip: Ipv4Addr, port: u16, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len.max(8));
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&ip.octets());
    out.resize(len.max(8), 0);
    out
}

/// An IPv6 SOCKADDR: family 23 (little-endian), port (big-endian), flow info, address, scope id,
/// zero padding to `len` bytes (28 for SOCKADDR_IN6, 128 for SOCKADDR_STORAGE).
pub fn sockaddr_v6(ip: Ipv6Addr, port: u16, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len.max(28));
    out.extend_from_slice(&23u16.to_le_bytes());
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&ip.octets());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.resize(len.max(28), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_layouts() {
        let v4 = sockaddr_v4(Ipv4Addr::new(10, 112, 140, 143), 62677, 128);
        assert_eq!(v4.len(), 128);
        assert_eq!(&v4[..8], &[0x02, 0x00, 0xF4, 0xD5, 0x0A, 0x70, 0x8C, 0x8F]);
        let v6 = sockaddr_v6(Ipv6Addr::LOCALHOST, 445, 28);
        assert_eq!(&v6[..4], &[0x17, 0x00, 0x01, 0xBD]);
        assert_eq!(v6[23], 1);
        assert_eq!(v6.len(), 28);
    }
}
