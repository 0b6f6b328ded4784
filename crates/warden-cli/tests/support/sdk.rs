//! The Rust SDK's client and a worker on its own thread, as the Temporal tests use them.

#![allow(unreachable_pub, dead_code)]

use std::collections::HashMap;

use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_sdk::{Worker, WorkerOptions};

/// A client of `namespace` at `target`, sending `token` as a bearer token when given.
pub async fn connect(target: &str, token: Option<&str>, namespace: &str) -> Client {
    let headers =
        token.map(|token| HashMap::from([("authorization".to_owned(), format!("Bearer {token}"))]));
    let options = ConnectionOptions::new(Url::parse(target).unwrap())
        .maybe_headers(headers)
        .build();
    let connection = Connection::connect(options).await.unwrap();
    Client::new(connection, ClientOptions::new(namespace).build()).unwrap()
}

/// A `temporalio-sdk` worker on its own thread, polling through `target` with the options
/// `options` builds (there, on the worker's thread); stopped and joined when dropped.
pub struct WorkerThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerThread {
    pub fn start(
        target: String,
        token: String,
        namespace: &str,
        options: impl FnOnce() -> WorkerOptions + Send + 'static,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let namespace = namespace.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let sdk = temporalio_sdk::Runtime::from_current_tokio(Default::default()).unwrap();
                let client = connect(&target, Some(&token), &namespace).await;
                let mut worker = Worker::new(&sdk, client, options()).unwrap();
                let shutdown = worker.shutdown_handle();
                let run = worker.run();
                tokio::pin!(run);
                tokio::select! {
                    result = &mut run => result.unwrap(),
                    _ = stopped => {
                        shutdown();
                        run.await.unwrap();
                    }
                }
            });
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
