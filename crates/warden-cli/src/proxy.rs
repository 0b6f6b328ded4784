//! `warden proxy` and `warden pdp`: load the config, start, serve until SIGINT or SIGTERM.

use std::{future::Future, path::Path, process::ExitCode};

use warden_proxy::{
    Listening, Proxy, ProxyConfig, ProxyError,
    config::LogConfig,
    pdp::{self, PdpConfig},
};

/// Runs the proxy until SIGINT or SIGTERM.
pub(crate) fn run(path: &Path, check: bool) -> ExitCode {
    match ProxyConfig::load(path) {
        Ok(config) => {
            let log = config.log.clone();
            serve("warden proxy", path, check, &log, move |base| async move {
                Proxy::start(config, &base).await.map(Listening::from)
            })
        }
        Err(e) => fail("warden proxy", &ProxyError::Config(e.into())),
    }
}

/// Runs the decision point until SIGINT or SIGTERM.
pub(crate) fn run_pdp(path: &Path, check: bool) -> ExitCode {
    match PdpConfig::load(path) {
        Ok(config) => {
            let log = config.log.clone();
            serve("warden pdp", path, check, &log, move |base| async move {
                pdp::start(config, &base).await
            })
        }
        Err(e) => fail("warden pdp", &ProxyError::Config(e.into())),
    }
}

fn serve<F>(
    name: &str,
    path: &Path,
    check: bool,
    log: &LogConfig,
    start: impl FnOnce(std::path::PathBuf) -> F,
) -> ExitCode
where
    F: Future<Output = Result<Listening, ProxyError>>,
{
    if let Err(e) = warden_proxy::init_logging(log) {
        return fail(name, &e);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(name, &ProxyError::Start(format!("runtime: {e}"))),
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    runtime.block_on(async move {
        // Signals are taken over before anything listens: a SIGTERM that arrives as soon as
        // the address is printed must shut down gracefully, not kill the process.
        let stop = termination();
        let server = match start(base).await {
            Ok(server) => server,
            Err(e) => return fail(name, &e),
        };
        if check {
            server.shutdown();
            let _ = server.wait().await;
            eprintln!("{name}: {}: config OK", path.display());
            return ExitCode::SUCCESS;
        }
        // The address is printed (not only logged) so scripts and tests can find a port 0
        // listener.
        println!("listening on {}", server.local_addr());
        if let Some(metrics) = server.metrics_addr() {
            println!("metrics on http://{metrics}/metrics");
        }
        stop.await;
        server.shutdown();
        match server.wait().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{name}: {e}");
                ExitCode::from(1)
            }
        }
    })
}

fn fail(name: &str, error: &ProxyError) -> ExitCode {
    eprintln!("{name}: {error}");
    ExitCode::from(2)
}

/// Resolves on SIGINT or SIGTERM; both are registered when this is called, not when the
/// future is first polled.
fn termination() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = signal(SignalKind::terminate())
            .and_then(|terminate| Ok((terminate, signal(SignalKind::interrupt())?)));
        async move {
            match streams {
                Ok((mut terminate, mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
