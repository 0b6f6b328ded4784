//! The JWT mapper's cost per call: a verified-token cache hit against a fresh RS256 and a
//! fresh ES256 verification, interleaved in one run.
//!
//! `cargo bench --bench identity` (`-- --quick` for a short run). Keys come from a JWKS served
//! on loopback, as in production; the timed part is `JwtMapper::verify` alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::median;

use std::time::Instant;

use warden_example::issuer::{self, JwksServer, SigningKey};
use warden_identity::jwt::{JwtConfig, JwtMapper};

async fn mapper(url: &str, cache_capacity: usize) -> JwtMapper {
    JwtConfig {
        cache_capacity,
        ..issuer::jwks_config(url, 3600)
    }
    .build()
    .await
    .unwrap()
}

/// Nanoseconds per call of `batch` verifications of `token`.
fn time(mapper: &JwtMapper, token: &str, batch: u32) -> f64 {
    let started = Instant::now();
    for _ in 0..batch {
        let claims = mapper.verify(token).now().expect("answered at once");
        assert!(claims.is_ok());
    }
    started.elapsed().as_nanos() as f64 / f64::from(batch)
}

fn main() {
    let (_, quick) = common::args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let rsa = SigningKey::rsa("rsa-1");
        let ec = SigningKey::ec("ec-1");
        let jwks = JwksServer::start(&[&rsa, &ec]).await;
        let cached = mapper(&jwks.url, 10_000).await;
        let fresh = mapper(&jwks.url, 0).await;
        let claims = issuer::claims("alice", &["orders:write", "billing:read"]);
        let rs256 = rsa.sign(&claims);
        let es256 = ec.sign(&claims);
        // Warm the cache (and the code) once.
        time(&cached, &es256, 1);
        let rounds = if quick { 3 } else { 200 };
        let (mut hits, mut rs, mut es) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            hits.push(time(&cached, &es256, 1_000));
            rs.push(time(&fresh, &rs256, 5));
            es.push(time(&fresh, &es256, 5));
        }
        let (hit, rs, es) = (median(hits), median(rs), median(es));
        println!("## JWT verification ({rounds} interleaved rounds)\n");
        println!("| path | median per call |");
        println!("|---|---|");
        println!("| verified-token cache hit | {:.3} µs |", hit / 1e3);
        println!(
            "| fresh RS256 verification (2048-bit) | {:.1} µs |",
            rs / 1e3
        );
        println!("| fresh ES256 verification (P-256) | {:.1} µs |", es / 1e3);
        println!(
            "\nA cache hit is {:.0}× cheaper than RS256 and {:.0}× cheaper than ES256.",
            rs / hit,
            es / hit
        );
    });
}
