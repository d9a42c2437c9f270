//! Helpers shared by the object model.

use std::collections::BTreeMap;

/// A field that Kubernetes omits from output when it holds nothing (`omitempty`).
pub trait IsEmpty {
    /// True when the value would be omitted.
    fn is_empty_value(&self) -> bool;
}

impl<T> IsEmpty for Option<T> {
    fn is_empty_value(&self) -> bool {
        self.is_none()
    }
}
impl<T: IsEmpty> IsEmpty for Box<T> {
    fn is_empty_value(&self) -> bool {
        (**self).is_empty_value()
    }
}

impl<T> IsEmpty for Vec<T> {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}
impl<K, V> IsEmpty for BTreeMap<K, V> {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}
impl IsEmpty for i32 {
    fn is_empty_value(&self) -> bool {
        false
    }
}
impl IsEmpty for String {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}

/// `skip_serializing_if` target for every field of the object model.
pub fn is_empty<T: IsEmpty>(v: &T) -> bool {
    v.is_empty_value()
}

/// Declares a Kubernetes-shaped struct: camelCase names, every field optional on input
/// (validation reports what is required, as Kubernetes does) and omitted when empty.
#[macro_export]
macro_rules! k8s_struct {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $f:ident : $t:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $(
                $(#[$fm])*
                #[serde(default, skip_serializing_if = "crate::util::is_empty")]
                pub $f: $t,
            )*
        }

        impl $crate::util::IsEmpty for $name {
            fn is_empty_value(&self) -> bool {
                *self == Self::default()
            }
        }
    };
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp (`2024-05-01T12:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parses the RFC 3339 UTC form `rfc3339` writes (also accepts fractional seconds and
/// numeric offsets). Returns seconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = s.get(19..)?;
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) => {
            let h: i64 = r.get(1..3)?.parse().ok()?;
            let mi: i64 = r.get(4..6)?.parse().ok()?;
            let o = h * 3600 + mi * 60;
            if r.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + hh * 3600 + mm * 60 + ss - offset;
    u64::try_from(t).ok()
}

/// An IPv4 prefix `ADDRESS/LEN` (`10.42.0.0/16`) with LEN in `lens`, the address cut to
/// the prefix. `what` names it in errors (`pod CIDR "10.42.0.0": want ADDRESS/PREFIX`).
pub fn parse_ipv4_cidr(
    what: &str,
    s: &str,
    lens: std::ops::RangeInclusive<u8>,
) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{what} {s:?}: want ADDRESS/PREFIX"))?;
    let ip: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{what} {s:?}: bad address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("{what} {s:?}: bad prefix"))?;
    if !lens.contains(&len) {
        return Err(format!(
            "{what} {s:?}: the prefix must be {} to {}",
            lens.start(),
            lens.end()
        ));
    }
    let mask = u32::MAX << (32 - len);
    Ok((std::net::Ipv4Addr::from(u32::from(ip) & mask), len))
}

/// `10s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?} (use 500ms, 10s, 2m, 24h, 7d)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for t in [0u64, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20+0\u{e9}00"), None);
    }
}
