//! Load while the rules file deciding it is rewritten every 100 ms — by turns atomically (a
//! temporary file renamed over it) and in place in two writes with a pause between, the way a
//! careless editor or script would — through the full stack (watching every 100 ms) and
//! through `warden proxy` (`reload_seconds = 1`).
//!
//! Every version of the file decides the mix the same way, and the one rule that allows
//! anything comes last: a file cut short would deny the allowed calls, and a call decided by
//! one would be counted wrong. So: 0 wrong, 0 lost, and the rules were reloaded during the
//! load, each reload swapped in whole between calls.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use support::{load::load, *};
use warden_core::{KindSet, OperationKind};
use warden_example::{operation_map, policies::identities};
use warden_policy::rules::RulesPolicy;
use warden_tower::WardenLayer;

/// Version `version` of the rules: 40 deny rules about namespaces the mix never names (the
/// version is in their ids, so every version is a change), then the only allow rule.
fn rules(version: u64) -> String {
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!(
            "[[rule]]\nid = \"retired-{version}-{i}\"\neffect = \"deny\"\nkinds = [\"terminate\"]\nnamespaces = [\"archive-{i}\"]\n\n"
        ));
    }
    text.push_str(
        "[[rule]]\nid = \"orders-writers\"\neffect = \"allow\"\nkinds = [\"read\", \"signal\"]\nnamespaces = [\"orders\"]\nsubject = { roles = [\"writer\"] }\n",
    );
    text
}

/// Rewrites `path` every 100 ms until `stop`, alternating an atomic rename with an in-place
/// write in two parts 10 ms apart. Returns how many versions were written.
fn rewrite_until(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut version = 1;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            version += 1;
            let text = rules(version);
            if version % 2 == 0 {
                let temporary = path.with_extension("tmp");
                std::fs::write(&temporary, &text).unwrap();
                std::fs::rename(&temporary, &path).unwrap();
            } else {
                // Cut inside the allow rule's id: the first half alone is never a valid file,
                // so even a writer stalled longer than the watcher's settle interval cannot
                // have it taken (a valid prefix would be, then: write atomically).
                let cut = text.find("orders-writers").unwrap() + 6;
                let (first, rest) = text.as_bytes().split_at(cut);
                let mut file = std::fs::File::create(&path).unwrap();
                file.write_all(first).unwrap();
                file.flush().unwrap();
                std::thread::sleep(Duration::from_millis(10));
                file.write_all(rest).unwrap();
            }
        }
        version - 1
    })
}

/// Runs `calls` of the load mix against `address` while `path` is rewritten, and checks them.
async fn load_while_rewriting(name: &str, address: std::net::SocketAddr, path: &Path, calls: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = rewrite_until(path.to_owned(), Arc::clone(&stop));
    let tally = load(address, name, calls).await;
    stop.store(true, Ordering::Relaxed);
    let rewrites = writer.join().unwrap();
    let (allowed, denied) = (tally.allowed.into_inner(), tally.denied.into_inner());
    let (wrong, lost) = (tally.wrong.into_inner(), tally.lost.into_inner());
    println!(
        "reload under load, {name}: {calls} calls, {rewrites} rewrites: {allowed} allowed, {denied} denied, {wrong} wrong, {lost} lost"
    );
    assert_eq!((wrong, lost), (0, 0), "{name}: wrong or lost answers");
    assert_eq!((allowed, denied), (calls / 2, calls / 2), "{name}");
    assert!(rewrites >= 10, "{name}: only {rewrites} rewrites");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_is_decided_by_a_half_written_rules_file_while_it_is_rewritten_under_load() {
    let logs = Captured::install();
    let calls: u64 = std::env::var("WARDEN_RELOAD_LOAD_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let dir = std::env::temp_dir().join(format!("warden-reload-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // The stack, watching its rules every 100 ms.
    let stack_rules = dir.join("stack-rules.toml");
    std::fs::write(&stack_rules, rules(1)).unwrap();
    let policy = RulesPolicy::load(&stack_rules).unwrap();
    policy.watch(Duration::from_millis(100));
    let kinds = KindSet::one(OperationKind::Execute)
        .with(OperationKind::Signal)
        .with(OperationKind::Read);
    let layer = WardenLayer::builder(operation_map())
        .authenticate(identities())
        .kinds(kinds, policy.clone())
        .build()
        .unwrap();
    let stack = serve_service(
        layer,
        warden_example::ExampleService::counting().into_server(),
    )
    .await;
    let before = policy.version();
    load_while_rewriting("stack", stack, &stack_rules, calls).await;
    let stack_reloads = policy.version() - before;
    assert!(
        stack_reloads >= 2,
        "the stack reloaded its rules {stack_reloads} times during the load"
    );

    // The proxy, reloading every second.
    let proxy_rules = dir.join("proxy-rules.toml");
    std::fs::write(&proxy_rules, rules(1)).unwrap();
    let upstream = serve_service(
        tower::layer::util::Identity::new(),
        warden_example::ExampleService::counting().into_server(),
    )
    .await;
    let policies = format!(
        "[policies.file]\ntype = \"rules\"\npath = \"{}\"\nreload_seconds = 1\n\n[authorize]\ndefault = [\"file\"]\n",
        proxy_rules.display()
    );
    let proxy = warden_proxy::Proxy::start(
        example_proxy_config_with(upstream, &dir, "", EXAMPLE_IDENTITY, &policies),
        &dir,
    )
    .await
    .unwrap();
    let offset = logs.len();
    load_while_rewriting("proxy", proxy.local_addr(), &proxy_rules, calls).await;
    let proxy_reloads = logs
        .since(offset)
        .lines()
        .filter(|line| {
            line.contains("rules reloaded") && line.contains(&*proxy_rules.to_string_lossy())
        })
        .count();
    println!("rules reloaded during the load: stack {stack_reloads}, proxy {proxy_reloads}");
    assert!(
        proxy_reloads >= 2,
        "the proxy reloaded its rules {proxy_reloads} times during the load"
    );
    proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
