//! `warden check` as a team's CI would run it: the real binary, the example policy files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("the warden binary runs")
}

fn check(config: &Path, request: &Path, json: bool) -> Output {
    let mut args = vec![
        "check",
        "--config",
        config.to_str().unwrap(),
        "--request",
        request.to_str().unwrap(),
    ];
    if json {
        args.push("--json");
    }
    warden(&args)
}

#[test]
fn an_allowed_request_exits_zero_and_lists_every_policy() {
    let dir = examples();
    let out = check(
        &dir.join("warden.toml"),
        &dir.join("requests/alice-small-discount.json"),
        false,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("ALLOW"), "{text}");
    assert!(
        text.contains("rules: allow by rules/small-discounts"),
        "{text}"
    );
    assert!(
        text.contains("owner: allow by instances/initiator (initiator)"),
        "{text}"
    );
}

#[test]
fn a_denied_request_exits_one_and_names_what_decided() {
    let dir = examples();
    let out = check(
        &dir.join("warden.toml"),
        &dir.join("requests/bob-approve.json"),
        true,
    );
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["allowed"], false);
    assert_eq!(json["decision"]["decider"], "privileges");
    assert_eq!(
        json["decision"]["reason"],
        "missing privilege `orders.approve`"
    );
    let big = check(
        &dir.join("warden.toml"),
        &dir.join("requests/alice-big-discount.json"),
        true,
    );
    assert_eq!(big.status.code(), Some(1));
}

#[test]
fn config_errors_exit_two_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("warden-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let request = examples().join("requests/alice-small-discount.json");
    std::fs::write(
        dir.join("rules.toml"),
        "[[rule]]\nid = \"x\"\neffect = \"allow\"\nkinds = [\"updat\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("warden.toml"),
        "[policies.file]\ntype = \"rules\"\npath = \"rules.toml\"\n[authorize]\ndefault = [\"file\"]\n",
    )
    .unwrap();
    let out = check(&dir.join("warden.toml"), &request, false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("rules.toml:1: rule `x`: unknown operation kind `updat`"),
        "{err}"
    );

    std::fs::write(
        dir.join("warden.toml"),
        "[authorize]\ndefault = [\"missing\"]\n",
    )
    .unwrap();
    let out = check(&dir.join("warden.toml"), &request, false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("authorize.default: no policy named `missing`"),
        "{err}"
    );

    std::fs::write(
        dir.join("warden.toml"),
        "[policies.x]\ntype = \"roles\"\ntabel = \"empty\"\n",
    )
    .unwrap();
    let out = check(&dir.join("warden.toml"), &request, false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("warden.toml: TOML parse error at line 1"),
        "{err}"
    );
    assert!(
        err.contains("unknown field `tabel`, expected `table` or `methods`"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
