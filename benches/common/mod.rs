//! What every bench binary shares: its arguments and its statistics.
#![allow(dead_code)] // each bench uses the part it needs

/// The command line, and whether this is a short run: `--quick`, or not started by
/// `cargo bench` (which passes `--bench`; `cargo test --all-targets` does not, and then a short
/// smoke run checks the bench still works without taking minutes in a debug build).
pub(crate) fn args() -> (Vec<String>, bool) {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick") || !args.iter().any(|a| a == "--bench");
    (args, quick)
}

/// The median of `samples`.
pub(crate) fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The `p` quantile of already sorted samples.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
