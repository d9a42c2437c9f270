//! Service addresses: a ClusterIP out of the service CIDR (default `10.43.0.0/16`) and, for
//! NodePort Services, node ports out of 30000–32767, each held by one Service at a time.
//!
//! What every Service holds is read from the store the first time it is needed and kept
//! under one lock, which a Service write holds from choosing its addresses until the store
//! acknowledged it: two Services never get one address. A deleted Service (or namespace)
//! drops the cache; it is read again.

use skiff_api::core::ServiceSpec;
use skiff_api::ObjectKey;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

/// What one Service holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holding {
    pub ip: Option<Ipv4Addr>,
    /// (port, protocol).
    pub node_ports: Vec<(u16, String)>,
}

impl Holding {
    pub fn of(spec: &ServiceSpec) -> Holding {
        Holding {
            ip: spec.cluster_ip.as_deref().and_then(|s| s.parse().ok()),
            node_ports: spec
                .ports
                .iter()
                .filter_map(|p| Some((u16::try_from(p.node_port?).ok()?, protocol(p))))
                .collect(),
        }
    }
}

fn protocol(p: &skiff_api::core::ServicePort) -> String {
    p.protocol.clone().unwrap_or_else(|| "TCP".into())
}

/// The address space and what is taken of it.
pub struct Services {
    pub cidr: (Ipv4Addr, u8),
    pub node_ports: std::ops::RangeInclusive<u16>,
    /// Held across a Service write; `None` until read from the store.
    pub held: tokio::sync::Mutex<Option<HashMap<ObjectKey, Holding>>>,
}

impl Default for Services {
    fn default() -> Self {
        Services::new((Ipv4Addr::new(10, 43, 0, 0), 16), 30000..=32767)
    }
}

/// `10.43.0.0/16`.
pub fn parse_service_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    skiff_api::util::parse_ipv4_cidr("service CIDR", s, 8..=28)
}

/// `30000-32767`.
pub fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let bad = || format!("node port range {s:?}: expected FIRST-LAST, e.g. 30000-32767");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

impl Services {
    pub fn new(cidr: (Ipv4Addr, u8), node_ports: std::ops::RangeInclusive<u16>) -> Services {
        Services {
            cidr,
            node_ports,
            held: tokio::sync::Mutex::new(None),
        }
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let (base, len) = self.cidr;
        let mask = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
        u32::from(ip) & mask == u32::from(base)
    }
}

/// Fills in a Service's ClusterIP and node ports: carried over from `old` (the stored
/// Service, on update) where the new spec leaves them out, chosen where free otherwise, and
/// checked where the user gave them. `others` is what every other Service holds; `seed`
/// picks where the search for a free address starts. Errors name the field, as Kubernetes.
pub fn assign(
    svc: &Services,
    spec: &mut ServiceSpec,
    old: Option<&ServiceSpec>,
    others: &mut dyn Iterator<Item = &Holding>,
    seed: u32,
) -> Result<(), String> {
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for h in others {
        ips.extend(h.ip);
        ports.extend(h.node_ports.iter().cloned());
    }
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let old_ip = old
        .and_then(|o| o.cluster_ip.clone())
        .filter(|s| !s.is_empty());
    if spec.cluster_ip.as_deref().unwrap_or("").is_empty() {
        spec.cluster_ip = old_ip.clone();
    }
    if spec.type_.as_deref() == Some("ExternalName") {
        spec.cluster_ip = None;
    } else if !headless {
        match spec.cluster_ip.as_deref().filter(|s| !s.is_empty()) {
            Some(given) => {
                let ip: Ipv4Addr = given.parse().map_err(|_| {
                    format!(
                        "spec.clusterIP: Invalid value: {given:?}: must be a valid IPv4 address"
                    )
                })?;
                if old_ip.as_deref() != Some(given) {
                    if !svc.contains(ip) {
                        return Err(format!(
                            "spec.clusterIP: Invalid value: {given:?}: provided IP is not in the valid range. The range of valid IPs is {}/{}",
                            svc.cidr.0, svc.cidr.1
                        ));
                    }
                    if ips.contains(&ip) {
                        return Err(format!(
                            "spec.clusterIP: Invalid value: {given:?}: provided IP is already allocated"
                        ));
                    }
                }
            }
            None => {
                let ip = free_ip(svc.cidr, &ips, seed).ok_or_else(|| {
                    format!(
                        "spec.clusterIP: Internal error: no addresses left in the service CIDR {}/{}",
                        svc.cidr.0, svc.cidr.1
                    )
                })?;
                spec.cluster_ip = Some(ip.to_string());
            }
        }
    }
    spec.cluster_ips = spec.cluster_ip.iter().cloned().collect();

    if !matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer")) {
        return Ok(());
    }
    let old_ports: Vec<(i32, String, i32)> = old
        .map(|o| {
            o.ports
                .iter()
                .filter_map(|p| Some((p.port?, protocol(p), p.node_port?)))
                .collect()
        })
        .unwrap_or_default();
    // `ports` holds the other Services' node ports, then this one's as they are taken.
    for (i, p) in spec.ports.iter_mut().enumerate() {
        let proto = protocol(p);
        if p.node_port.is_none() {
            p.node_port = old_ports
                .iter()
                .find(|(port, pr, _)| Some(*port) == p.port && *pr == proto)
                .map(|(_, _, np)| *np);
        }
        match p.node_port {
            Some(np) => {
                let n = u16::try_from(np)
                    .ok()
                    .filter(|n| svc.node_ports.contains(n));
                let Some(n) = n else {
                    return Err(format!(
                        "spec.ports[{i}].nodePort: Invalid value: {np}: provided port is not in the valid range. The range of valid ports is {}-{}",
                        svc.node_ports.start(), svc.node_ports.end()
                    ));
                };
                if !ports.insert((n, proto)) {
                    return Err(format!(
                        "spec.ports[{i}].nodePort: Invalid value: {np}: provided port is already allocated"
                    ));
                }
            }
            None => {
                let span = (*svc.node_ports.end() - *svc.node_ports.start()) as u32 + 1;
                let start = seed.wrapping_add(i as u32 * 7919);
                let n = (0..span)
                    .map(|k| svc.node_ports.start() + ((start.wrapping_add(k)) % span) as u16)
                    .find(|n| !ports.contains(&(*n, proto.clone())))
                    .ok_or_else(|| {
                        format!("spec.ports[{i}].nodePort: Internal error: no node ports left")
                    })?;
                p.node_port = Some(n as i32);
                ports.insert((n, proto));
            }
        }
    }
    Ok(())
}

/// A free address of `cidr` (not its network or broadcast address, nor its first, which
/// Kubernetes keeps for the API's own Service), searching from `seed`.
fn free_ip(cidr: (Ipv4Addr, u8), taken: &HashSet<Ipv4Addr>, seed: u32) -> Option<Ipv4Addr> {
    let (base, len) = cidr;
    let size = 1u64 << (32 - len as u64);
    let usable = size.checked_sub(3).filter(|n| *n > 0)?;
    (0..usable)
        .map(|k| (seed as u64 + k) % usable + 2)
        .map(|off| Ipv4Addr::from(u32::from(base) + off as u32))
        .find(|ip| !taken.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::core::ServicePort;

    fn spec(ty: &str, ip: Option<&str>, ports: &[(i32, Option<i32>)]) -> ServiceSpec {
        ServiceSpec {
            type_: Some(ty.into()),
            cluster_ip: ip.map(String::from),
            ports: ports
                .iter()
                .map(|(p, np)| ServicePort {
                    port: Some(*p),
                    protocol: Some("TCP".into()),
                    node_port: *np,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn addresses_are_chosen_once_and_checked() {
        let svc = Services::new(parse_service_cidr("10.43.0.0/16").unwrap(), 30000..=32767);
        let mut a = spec("ClusterIP", None, &[(80, None)]);
        assign(&svc, &mut a, None, &mut std::iter::empty(), 7).unwrap();
        assert_eq!(a.cluster_ip.as_deref(), Some("10.43.0.9"));
        assert_eq!(a.cluster_ips, vec!["10.43.0.9".to_string()]);
        let held = [Holding::of(&a)];
        // The same seed finds the next free address.
        let mut b = spec("ClusterIP", None, &[(80, None)]);
        assign(&svc, &mut b, None, &mut held.iter(), 7).unwrap();
        assert_eq!(b.cluster_ip.as_deref(), Some("10.43.0.10"));
        // A taken or foreign address is refused with the field's path.
        let mut c = spec("ClusterIP", Some("10.43.0.9"), &[(80, None)]);
        let e = assign(&svc, &mut c, None, &mut held.iter(), 0).unwrap_err();
        assert!(
            e.starts_with(
                "spec.clusterIP: Invalid value: \"10.43.0.9\": provided IP is already allocated"
            ),
            "{e}"
        );
        let mut d = spec("ClusterIP", Some("10.9.0.1"), &[(80, None)]);
        let e = assign(&svc, &mut d, None, &mut held.iter(), 0).unwrap_err();
        assert!(e.contains("not in the valid range"), "{e}");
        // An update without the address keeps it; headless stays headless.
        let mut again = spec("ClusterIP", None, &[(81, None)]);
        assign(&svc, &mut again, Some(&a), &mut std::iter::empty(), 99).unwrap();
        assert_eq!(again.cluster_ip, a.cluster_ip);
        let mut h = spec("ClusterIP", Some("None"), &[]);
        assign(&svc, &mut h, None, &mut held.iter(), 0).unwrap();
        assert_eq!(h.cluster_ip.as_deref(), Some("None"));
    }

    #[test]
    fn node_ports_are_chosen_kept_and_checked() {
        let svc = Services::default();
        let mut a = spec("NodePort", None, &[(80, None), (443, Some(30443))]);
        assign(&svc, &mut a, None, &mut std::iter::empty(), 5).unwrap();
        assert_eq!(a.ports[0].node_port, Some(30005));
        assert_eq!(a.ports[1].node_port, Some(30443));
        let held = [Holding::of(&a)];
        let mut b = spec("NodePort", None, &[(80, Some(30443))]);
        let e = assign(&svc, &mut b, None, &mut held.iter(), 0).unwrap_err();
        assert_eq!(
            e,
            "spec.ports[0].nodePort: Invalid value: 30443: provided port is already allocated"
        );
        let mut c = spec("NodePort", None, &[(80, Some(8080))]);
        let e = assign(&svc, &mut c, None, &mut held.iter(), 0).unwrap_err();
        assert!(
            e.contains("valid range of ports") || e.contains("30000-32767"),
            "{e}"
        );
        // Re-applying without node ports keeps the ones it had.
        let mut again = spec("NodePort", None, &[(80, None), (443, None)]);
        assign(&svc, &mut again, Some(&a), &mut std::iter::empty(), 77).unwrap();
        assert_eq!(again.ports[0].node_port, Some(30005));
        assert_eq!(again.ports[1].node_port, Some(30443));
        // ClusterIP services get none.
        let mut d = spec("ClusterIP", None, &[(80, None)]);
        assign(&svc, &mut d, None, &mut held.iter(), 0).unwrap();
        assert_eq!(d.ports[0].node_port, None);
    }
}
