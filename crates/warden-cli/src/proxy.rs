//! `warden proxy`.

use std::{path::Path, process::ExitCode};

use warden_proxy::{Proxy, ProxyConfig, ProxyError};

/// Runs the proxy until SIGINT or SIGTERM.
pub(crate) fn run(path: &Path, check: bool) -> ExitCode {
    let config = match ProxyConfig::load(path) {
        Ok(config) => config,
        Err(e) => return fail(&ProxyError::Config(e.into())),
    };
    if let Err(e) = warden_proxy::init_logging(&config.log) {
        return fail(&e);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&ProxyError::Start(format!("runtime: {e}"))),
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    runtime.block_on(async move {
        let proxy = match Proxy::start(config, &base).await {
            Ok(proxy) => proxy,
            Err(e) => return fail(&e),
        };
        if check {
            proxy.shutdown();
            let _ = proxy.wait().await;
            eprintln!("warden proxy: {}: config OK", path.display());
            return ExitCode::SUCCESS;
        }
        // The address is printed (not only logged) so scripts and tests can find a port 0
        // listener.
        println!("listening on {}", proxy.local_addr());
        if let Some(metrics) = proxy.metrics_addr() {
            println!("metrics on http://{metrics}/metrics");
        }
        termination().await;
        proxy.shutdown();
        match proxy.wait().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("warden proxy: {e}");
                ExitCode::from(1)
            }
        }
    })
}

fn fail(error: &ProxyError) -> ExitCode {
    eprintln!("warden proxy: {error}");
    ExitCode::from(2)
}

/// Resolves on SIGINT or SIGTERM.
async fn termination() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
