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

use std::{cell::RefCell, net::SocketAddr, sync::Arc};

use tonic::transport::{
    CertificateDer,
    server::{TcpConnectInfo, TlsConnectInfo},
};
use warden_core::{Peer, Transport};

type TonicChain = Arc<Vec<CertificateDer<'static>>>;

/// A chain as tonic holds it, and as Warden's `RequestContext` holds it.
type Converted = (TonicChain, Arc<[Vec<u8>]>);

thread_local! {
    /// The last chain converted on this thread, with tonic's own handle to it: every call on a
    /// connection carries the same `Arc`, so its calls after the first share one conversion
    /// instead of copying the chain each time. Holding tonic's `Arc` keeps the pointer from
    /// being reused by another connection's chain.
    static LAST_CHAIN: RefCell<Option<Converted>> = const { RefCell::new(None) };
}

/// The chain as DER vectors, converted once per connection (per thread).
fn der_chain(certs: TonicChain) -> Arc<[Vec<u8>]> {
    LAST_CHAIN.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((seen, converted)) = last.as_ref()
            && Arc::ptr_eq(seen, &certs)
        {
            return Arc::clone(converted);
        }
        let converted: Arc<[Vec<u8>]> = certs.iter().map(|c| c.as_ref().to_vec()).collect();
        *last = Some((certs, Arc::clone(&converted)));
        converted
    })
}

/// Everything tonic knows about the peer: its address, its certificate chain, and whether the
/// connection is TLS (a server that serves neither TLS nor TCP connect info is `Unknown`).
pub fn peer(extensions: &http::Extensions) -> Peer {
    if let Some(tls) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
        return Peer::new(tls.get_ref().remote_addr(), Transport::Tls)
            .with_certificates(tls.peer_certs().map(der_chain));
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
    Some(der_chain(certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(bytes: &[u8]) -> TonicChain {
        Arc::new(vec![CertificateDer::from(bytes.to_vec())])
    }

    #[test]
    fn a_connection_s_chain_is_converted_once_and_another_connection_s_is_its_own() {
        let first = chain(b"alice");
        let a = der_chain(Arc::clone(&first));
        let again = der_chain(Arc::clone(&first));
        assert!(
            Arc::ptr_eq(&a, &again),
            "the same connection shares one conversion"
        );
        // Another connection with the same bytes still gets its own conversion, and one with
        // other bytes gets those.
        let other = der_chain(chain(b"bob"));
        assert_eq!(&*other, &[b"bob".to_vec()]);
        let same_bytes = der_chain(chain(b"alice"));
        assert!(!Arc::ptr_eq(&a, &same_bytes));
        assert_eq!(&*same_bytes, &[b"alice".to_vec()]);
        assert_eq!(&*der_chain(first), &*a);
    }
}
