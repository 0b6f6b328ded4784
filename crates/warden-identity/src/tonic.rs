//! Where tonic's server puts the connection's details, for Warden's layers.
//!
//! tonic inserts `TcpConnectInfo` (plain TCP) or `TlsConnectInfo<TcpConnectInfo>` (TLS) into
//! every request's extensions; Warden's layers look for their own extension types, so tell
//! them where to look:
//!
//! ```no_run
//! use warden_tower::{AuthenticateLayer, WardenLayer};
//! # fn layer(map: warden_tower::map::OperationMap, mapper: warden_identity::FirstOf) {
//! let warden = WardenLayer::builder(map)
//!     .peer_from(warden_identity::tonic::peer)
//!     .authenticate_with(AuthenticateLayer::new(mapper));
//! # let _ = warden; }
//! ```

use std::{net::SocketAddr, sync::Arc};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use warden_core::{Peer, Transport};

/// Everything tonic knows about the peer: its address, its certificate chain, and whether the
/// connection is TLS (a server that serves neither TLS nor TCP connect info is `Unknown`).
pub fn peer(extensions: &http::Extensions) -> Peer {
    if let Some(tls) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
        return Peer::new(tls.get_ref().remote_addr(), Transport::Tls).with_certificates(
            tls.peer_certs()
                .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect()),
        );
    }
    match extensions.get::<TcpConnectInfo>() {
        Some(tcp) => Peer::new(tcp.remote_addr(), Transport::Plaintext),
        None => Peer::default(),
    }
}

/// The peer's address, over plain TCP or TLS.
pub fn peer_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    if let Some(tls) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
        return tls.get_ref().remote_addr();
    }
    extensions.get::<TcpConnectInfo>()?.remote_addr()
}

/// The TLS peer's certificate chain (leaf first, DER).
pub fn peer_certificates(extensions: &http::Extensions) -> Option<Arc<[Vec<u8>]>> {
    let certs = extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()?;
    Some(certs.iter().map(|c| c.as_ref().to_vec()).collect())
}
