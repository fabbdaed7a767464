//! The scalar UDFs evtxsql adds to SQL: NTSTATUS names, SOCKADDR decoding, IP tests and host
//! name normalization. Every function takes any argument type (it casts), returns NULL for NULL or
//! unparseable input and never panics.

use std::net::IpAddr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, StringArray, UInt16Array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use evtxsql_ingest::mapping::{decode_sockaddr, normalize_host, parse_number};

use crate::ntstatus;

/// Which function an [`EvtxUdf`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    NtstatusName,
    SockaddrIp,
    SockaddrPort,
    IpInCidr,
    IsPrivateIp,
    NormalizeHost,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::NtstatusName,
        Kind::SockaddrIp,
        Kind::SockaddrPort,
        Kind::IpInCidr,
        Kind::IsPrivateIp,
        Kind::NormalizeHost,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::NtstatusName => "ntstatus_name",
            Kind::SockaddrIp => "sockaddr_ip",
            Kind::SockaddrPort => "sockaddr_port",
            Kind::IpInCidr => "ip_in_cidr",
            Kind::IsPrivateIp => "is_private_ip",
            Kind::NormalizeHost => "normalize_host",
        }
    }

    fn arity(self) -> usize {
        match self {
            Kind::IpInCidr => 2,
            _ => 1,
        }
    }

    fn return_type(self) -> DataType {
        match self {
            Kind::NtstatusName | Kind::SockaddrIp | Kind::NormalizeHost => DataType::Utf8,
            Kind::SockaddrPort => DataType::UInt16,
            Kind::IpInCidr | Kind::IsPrivateIp => DataType::Boolean,
        }
    }
}

/// One of the evtxsql scalar functions.
#[derive(Debug, PartialEq, Eq, Hash)]
struct EvtxUdf {
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for EvtxUdf {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.kind.return_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.kind {
            Kind::NtstatusName => {
                let codes = status_codes(&arrays[0])?;
                Arc::new(
                    codes
                        .iter()
                        .map(|c| c.and_then(ntstatus::ntstatus_name))
                        .collect::<StringArray>(),
                )
            }
            Kind::SockaddrIp => {
                let s = strings(&arrays[0])?;
                Arc::new(
                    s.iter()
                        .map(|v| v.and_then(decode_sockaddr).map(|(ip, _)| ip.to_string()))
                        .collect::<StringArray>(),
                )
            }
            Kind::SockaddrPort => {
                let s = strings(&arrays[0])?;
                Arc::new(
                    s.iter()
                        .map(|v| v.and_then(decode_sockaddr).map(|(_, port)| port))
                        .collect::<UInt16Array>(),
                )
            }
            Kind::IpInCidr => {
                let ips = strings(&arrays[0])?;
                let cidrs = strings(&arrays[1])?;
                Arc::new(
                    ips.iter()
                        .zip(cidrs.iter())
                        .map(|(ip, cidr)| ip_in_cidr(ip?, cidr?))
                        .collect::<BooleanArray>(),
                )
            }
            Kind::IsPrivateIp => {
                let s = strings(&arrays[0])?;
                Arc::new(
                    s.iter()
                        .map(|v| parse_ip(v?).map(is_private))
                        .collect::<BooleanArray>(),
                )
            }
            Kind::NormalizeHost => {
                let s = strings(&arrays[0])?;
                Arc::new(
                    s.iter()
                        .map(|v| v.and_then(normalize_host))
                        .collect::<StringArray>(),
                )
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// The evtxsql scalar functions, ready to register.
pub fn evtxsql_udfs() -> Vec<ScalarUDF> {
    Kind::ALL
        .iter()
        .map(|&kind| {
            ScalarUDF::new_from_impl(EvtxUdf {
                kind,
                signature: Signature::any(kind.arity(), Volatility::Immutable),
            })
        })
        .collect()
}

/// Register the evtxsql functions and the JSON functions (`json_get_str(data, 'UserName')`, ...)
/// on `ctx`. The `->`/`->>` JSON operators need the session-level registration that
/// [`crate::session_for_store`] does.
pub fn register_udfs(ctx: &SessionContext) {
    for udf in evtxsql_udfs() {
        ctx.register_udf(udf);
    }
    for udf in json_udfs() {
        ctx.register_udf(udf.as_ref().clone());
    }
}

/// Register everything, including the JSON operators, on a registry (a `SessionState`): the
/// evtxsql functions and datafusion-functions-json's functions, rewrite and operator planner.
/// Every place that plans or runs evtxsql's SQL needs them: local sessions, and on a cluster
/// the client, the scheduler and each executor.
pub fn register_functions(registry: &mut dyn FunctionRegistry) -> Result<()> {
    datafusion_functions_json::register_all(registry)?;
    for udf in evtxsql_udfs() {
        registry.register_udf(Arc::new(udf))?;
    }
    Ok(())
}

fn json_udfs() -> Vec<Arc<ScalarUDF>> {
    use datafusion_functions_json::udfs::*;
    vec![
        json_get_udf(),
        json_get_bool_udf(),
        json_get_float_udf(),
        json_get_int_udf(),
        json_get_json_udf(),
        json_get_array_udf(),
        json_as_text_udf(),
        json_get_str_udf(),
        json_contains_udf(),
        json_length_udf(),
        json_object_keys_udf(),
        json_from_scalar_udf(),
        json_union_to_text_udf(),
    ]
}

fn safe_cast() -> CastOptions<'static> {
    CastOptions {
        safe: true,
        ..Default::default()
    }
}

/// Any array as UTF-8 text (values that cannot be cast become NULL).
fn strings(array: &ArrayRef) -> Result<StringArray> {
    let cast = cast_with_options(array, &DataType::Utf8, &safe_cast())?;
    Ok(cast
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .unwrap_or_else(|| StringArray::new_null(array.len())))
}

/// NTSTATUS codes from numbers (signed 32-bit values are taken as their bit pattern) or from text
/// (`0xC000006D` or decimal).
fn status_codes(array: &ArrayRef) -> Result<Vec<Option<u32>>> {
    let is_text = match array.data_type() {
        DataType::Dictionary(_, v) => v.is_string(),
        t => t.is_string(),
    };
    if is_text {
        let s = strings(array)?;
        return Ok(s
            .iter()
            .map(|v| v.and_then(parse_number).and_then(|n| u32::try_from(n).ok()))
            .collect());
    }
    let cast = cast_with_options(array, &DataType::Int64, &safe_cast())?;
    let Some(ints) = cast.as_any().downcast_ref::<Int64Array>() else {
        return Ok(vec![None; array.len()]);
    };
    Ok(ints
        .iter()
        .map(|v| {
            let v = v?;
            if let Ok(u) = u32::try_from(v) {
                Some(u)
            } else {
                i32::try_from(v).ok().map(|i| i.cast_unsigned())
            }
        })
        .collect())
}

/// An IP address as text; `::ffff:a.b.c.d` becomes the IPv4 address, brackets and a zone are
/// dropped.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let t = s.trim().trim_start_matches('[').trim_end_matches(']');
    let t = t.split('%').next().unwrap_or(t);
    match t.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(
            v6.to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
        ),
        v4 => Some(v4),
    }
}

/// `ip` is inside `cidr` (`10.0.0.0/8`, `fe80::/10`; a bare address means /32 or /128).
fn ip_in_cidr(ip: &str, cidr: &str) -> Option<bool> {
    let ip = parse_ip(ip)?;
    let (net, bits) = match cidr.trim().split_once('/') {
        Some((n, b)) => (parse_ip(n)?, Some(b.trim().parse::<u32>().ok()?)),
        None => (parse_ip(cidr)?, None),
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            Some(u32::from(a) & mask == u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            Some(u128::from(a) & mask == u128::from(n) & mask)
        }
        _ => Some(false),
    }
}

/// Not routable on the internet: RFC 1918, loopback, link-local, CGNAT (100.64/10), unspecified;
/// IPv6 loopback, unique-local (fc00::/7), link-local (fe80::/10), unspecified.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (o[0] == 100 && (o[1] & 0xC0) == 64)
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg0 & 0xFE00) == 0xFC00
                || (seg0 & 0xFFC0) == 0xFE80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        assert_eq!(ip_in_cidr("10.1.2.3", "10.0.0.0/8"), Some(true));
        assert_eq!(ip_in_cidr("11.1.2.3", "10.0.0.0/8"), Some(false));
        assert_eq!(ip_in_cidr("::ffff:10.1.2.3", "10.0.0.0/8"), Some(true));
        assert_eq!(ip_in_cidr("10.1.2.3", "0.0.0.0/0"), Some(true));
        assert_eq!(ip_in_cidr("10.1.2.3", "10.1.2.3"), Some(true));
        assert_eq!(ip_in_cidr("fe80::1", "fe80::/10"), Some(true));
        assert_eq!(ip_in_cidr("10.1.2.3", "fe80::/10"), Some(false));
        assert_eq!(ip_in_cidr("10.1.2.3", "10.0.0.0/33"), None);
        assert_eq!(ip_in_cidr("garbage", "10.0.0.0/8"), None);
        assert_eq!(ip_in_cidr("10.1.2.3", "10.0.0.0/x"), None);
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private(parse_ip(ip).expect(ip)), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "100.128.0.1"] {
            assert!(!is_private(parse_ip(ip).expect(ip)), "{ip}");
        }
    }
}
