//! The coordinator's front door: what a peer that has not authenticated can make it do
//! and hold. Handshakes are rate-limited per source address (a token bucket) and the
//! connections without a client certificate, handshaking or open, are capped; past half
//! the cap, a source must prove its address (a QUIC Retry) before any handshake state is
//! kept. A peer without a certificate may only join: small frames, two streams, a short
//! life (`server.rs`). One source address may hold at most
//! [`Limits::max_unauthenticated_per_source`] of them, so one address cannot keep others
//! out by holding every slot. The decisions are pure; `server.rs` applies them.
//!
//! What a peer can make the coordinator hold, before it authenticates, is bounded by:
//! [`Limits::max_unauthenticated`] connections × ([`ANON_RECEIVE_WINDOW`] of buffered
//! stream data + [`ANON_STREAMS`] frames of at most `MAX_JOIN_FRAME_LEN` + quinn's
//! per-connection state, a few tens of KB): about 16 MB with the defaults.
//! `skiff-bench front-door` measures it.

use crate::bucket::Bucket;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Streams a peer without a certificate may have open at once (a join needs one).
pub const ANON_STREAMS: u32 = 2;
/// Streams any identity may have open at once on one connection.
pub const STREAMS: u32 = 128;
/// Bytes of stream data a peer without a certificate may have in flight to the
/// coordinator (QUIC's connection flow control window): a join request, twice over.
pub const ANON_RECEIVE_WINDOW: u32 = 64 << 10;
/// How long a connection without a certificate may stay open: a join takes one request.
pub const ANON_LIFETIME: Duration = Duration::from_secs(20);
/// Bytes of request frames one authenticated connection may have in flight (read or
/// being read, until answered): 128 streams cannot make the coordinator hold 128
/// frames of 16 MiB. A frame waits for its share (within [`FRAME_READ_DEADLINE`]).
pub const BODY_BUDGET: usize = 32 << 20;
/// Bytes of stream data an authenticated peer may have in flight to the coordinator,
/// unread (QUIC's connection window): the frames of [`BODY_BUDGET`] and 8 MiB of
/// requests waiting for their share. With it, what one authenticated connection can make
/// the coordinator hold is about 72 MiB, whatever it sends.
pub const AUTH_RECEIVE_WINDOW: u32 = (BODY_BUDGET + (8 << 20)) as u32;
/// How long reading one request frame may take, for every identity.
pub const FRAME_READ_DEADLINE: Duration = Duration::from_secs(10);

/// The front door's limits (`skiff-coordinator` flags).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections without a client certificate, handshaking or open, at once.
    pub max_unauthenticated: usize,
    /// Connections without a certificate one source address may hold at once: one
    /// address cannot take every slot, however slowly it reconnects.
    pub max_unauthenticated_per_source: usize,
    /// Handshakes a second one source address may start (sustained).
    pub handshakes_per_second: f64,
    /// Handshakes one source address may start in a burst.
    pub handshake_burst: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unauthenticated: 128,
            max_unauthenticated_per_source: 16,
            handshakes_per_second: 20.0,
            handshake_burst: 60.0,
        }
    }
}

/// What to do with a new connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Handshake.
    Accept,
    /// Ask the peer to prove its address first (no state kept until it does).
    Retry,
    /// Refuse (the peer is told at once, nothing is kept).
    Refuse,
}

/// Whether a connection attempt may go on. `unauthenticated`: connections without a
/// certificate now; `validated`: the peer proved its address (answered a Retry);
/// `has_token`: its source address still has a handshake token; `from_source`: the
/// connections without a certificate its address holds now.
pub fn admission(
    limits: &Limits,
    unauthenticated: usize,
    validated: bool,
    has_token: bool,
    from_source: usize,
) -> Admission {
    if !has_token
        || unauthenticated >= limits.max_unauthenticated
        || from_source >= limits.max_unauthenticated_per_source
    {
        Admission::Refuse
    } else if !validated && unauthenticated >= limits.max_unauthenticated / 2 {
        Admission::Retry
    } else {
        Admission::Accept
    }
}

/// The front door's state: the live unauthenticated connections and each source's
/// bucket (sources idle long enough to have a full bucket are forgotten, so the map
/// holds only sources seen in the last few seconds).
pub struct FrontDoor {
    pub limits: Limits,
    unauthenticated: Arc<AtomicUsize>,
    per_source: Arc<Mutex<HashMap<IpAddr, usize>>>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// Counts a connection as unauthenticated, in all and for its source, while it lives.
pub struct Unauthenticated {
    all: Arc<AtomicUsize>,
    per_source: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        self.all.fetch_sub(1, Ordering::Relaxed);
        let mut m = self.per_source.lock().unwrap();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl FrontDoor {
    pub fn new(limits: Limits) -> FrontDoor {
        FrontDoor {
            limits,
            unauthenticated: Arc::new(AtomicUsize::new(0)),
            per_source: Arc::new(Mutex::new(HashMap::new())),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Connections without a certificate, handshaking or open.
    pub fn unauthenticated(&self) -> usize {
        self.unauthenticated.load(Ordering::Relaxed)
    }

    /// Decides on an attempt from `ip`. A Retry costs the source no token: its
    /// validated attempt takes one.
    pub fn admit(&self, ip: IpAddr, validated: bool, now: Instant) -> Admission {
        let n = self.unauthenticated();
        if !validated
            && n >= self.limits.max_unauthenticated / 2
            && n < self.limits.max_unauthenticated
        {
            return Admission::Retry;
        }
        let (rate, burst) = (
            self.limits.handshakes_per_second,
            self.limits.handshake_burst,
        );
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() > 4096 {
            let full = Duration::from_secs_f64(burst / rate.max(0.001));
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < full);
        }
        let has = buckets
            .entry(ip)
            .or_insert(Bucket::full(burst, now))
            .take(now, rate, burst);
        drop(buckets);
        let from_source = self
            .per_source
            .lock()
            .unwrap()
            .get(&ip)
            .copied()
            .unwrap_or(0);
        admission(&self.limits, n, validated, has, from_source)
    }

    /// Counts a new connection from `ip` as unauthenticated until the guard is dropped
    /// (when it shows a certificate, or ends).
    pub fn count(&self, ip: IpAddr) -> Unauthenticated {
        self.unauthenticated.fetch_add(1, Ordering::Relaxed);
        *self.per_source.lock().unwrap().entry(ip).or_insert(0) += 1;
        Unauthenticated {
            all: self.unauthenticated.clone(),
            per_source: self.per_source.clone(),
            ip,
        }
    }
}

/// The CA's client certificate verifier, except that a certificate whose only fault is
/// its age is let through the handshake: the connection then tells the peer why it is
/// refused and how its node is readmitted, and records it on the Node, instead of a bare
/// TLS alert the node cannot explain. A connection never authenticates with an expired
/// certificate: `server.rs` closes it before reading a stream.
#[derive(Debug)]
pub struct ExpiryTolerant(pub Arc<dyn ClientCertVerifier>);

/// A certificate's `notAfter`.
fn not_after(der: &CertificateDer<'_>) -> Option<u64> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    u64::try_from(c.validity().not_after.timestamp()).ok()
}

impl ClientCertVerifier for ExpiryTolerant {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.0.verify_client_cert(end_entity, intermediates, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            )) => {
                // Valid in every other respect at the last second it was valid?
                let at = not_after(end_entity).ok_or(rustls::Error::InvalidCertificate(
                    CertificateError::BadEncoding,
                ))?;
                let then = UnixTime::since_unix_epoch(Duration::from_secs(at));
                self.0.verify_client_cert(end_entity, intermediates, then)
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.0.requires_raw_public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_up_to_its_burst() {
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: 3.0,
            at: t0,
        };
        assert!(b.take(t0, 2.0, 3.0));
        assert!(b.take(t0, 2.0, 3.0));
        assert!(b.take(t0, 2.0, 3.0));
        assert!(!b.take(t0, 2.0, 3.0), "burst spent");
        assert!(
            b.take(t0 + Duration::from_millis(500), 2.0, 3.0),
            "one back in 0.5 s at 2/s"
        );
        assert!(!b.take(t0 + Duration::from_millis(500), 2.0, 3.0));
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.take(later, 2.0, 3.0));
        }
        assert!(!b.take(later, 2.0, 3.0));
    }

    #[test]
    fn strangers_are_capped_asked_to_retry_then_refused() {
        let l = Limits {
            max_unauthenticated: 10,
            ..Limits::default()
        };
        assert_eq!(admission(&l, 0, false, true, 0), Admission::Accept);
        assert_eq!(admission(&l, 4, false, true, 0), Admission::Accept);
        assert_eq!(admission(&l, 5, false, true, 0), Admission::Retry);
        assert_eq!(admission(&l, 5, true, true, 0), Admission::Accept);
        assert_eq!(admission(&l, 10, true, true, 0), Admission::Refuse);
        assert_eq!(
            admission(&l, 0, true, false, 0),
            Admission::Refuse,
            "out of tokens"
        );
        assert_eq!(
            admission(&l, 3, true, true, 16),
            Admission::Refuse,
            "one source holds its share"
        );
    }

    #[test]
    fn one_source_is_limited_without_limiting_another() {
        let door = FrontDoor::new(Limits {
            max_unauthenticated: 1000,
            max_unauthenticated_per_source: 2,
            handshakes_per_second: 1.0,
            handshake_burst: 5.0,
        });
        let now = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..5 {
            assert_eq!(door.admit(a, false, now), Admission::Accept);
        }
        assert_eq!(door.admit(a, false, now), Admission::Refuse);
        assert_eq!(door.admit(b, false, now), Admission::Accept);
        // The counts follow the guards: two held by b, b's third is refused.
        let later = now + Duration::from_secs(60);
        let (g1, g2) = (door.count(b), door.count(b));
        assert_eq!(door.unauthenticated(), 2);
        assert_eq!(door.admit(b, true, later), Admission::Refuse);
        assert_eq!(door.admit(a, true, later), Admission::Accept);
        drop((g1, g2));
        assert_eq!(door.unauthenticated(), 0);
        assert_eq!(door.admit(b, true, later), Admission::Accept);
    }
}
