//! What the transport knows about the peer, read from request extensions in one place.

use std::{net::SocketAddr, sync::Arc};

use http::Extensions;
pub use warden_core::{Peer, Transport};

/// The peer address, for transports that do not put one where Warden looks by default.
/// Insert it into request extensions (or teach the layer with
/// [`ClassifyLayer::peer_from`](super::ClassifyLayer::peer_from)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The TLS peer's certificate chain (leaf first, DER), for transports that terminate TLS
/// themselves to put in request extensions.
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<[Vec<u8>]>);

/// Reads what the transport knows about a call's peer from its request extensions.
pub type PeerFn = fn(&Extensions) -> Peer;

/// The default [`PeerFn`]: the [`PeerAddr`], [`PeerCertificates`] and [`Transport`]
/// extensions; without a `Transport`, a call with certificates came over TLS and any other's
/// transport is unknown.
pub fn from_extensions(extensions: &Extensions) -> Peer {
    let certificates = extensions
        .get::<PeerCertificates>()
        .map(|chain| Arc::clone(&chain.0));
    let transport = extensions
        .get::<Transport>()
        .copied()
        .unwrap_or(if certificates.is_some() {
            Transport::Tls
        } else {
            Transport::Unknown
        });
    Peer::new(extensions.get::<PeerAddr>().map(|p| p.0), transport).with_certificates(certificates)
}
