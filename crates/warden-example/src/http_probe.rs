//! Plain HTTP/1.1 GETs over loopback for tests: a metrics endpoint, a JWKS path, a health
//! page — and reading one Prometheus sample out of the text.

// Fixtures: an endpoint that cannot be reached is a failed test, said loudly.
#![allow(clippy::expect_used)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GETs `url` (`http://host:port/path`) and returns the whole response: status line, headers
/// and body.
pub async fn get_response(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_once('/').expect("a URL with a path");
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("the endpoint accepts connections");
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("the request is sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("a UTF-8 response");
    response
}

/// GETs `url` and returns the body.
pub async fn get(url: &str) -> String {
    get_response(url)
        .await
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The value of the Prometheus sample `name{labels}` (labels as rendered) in `text`, or 0.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}
