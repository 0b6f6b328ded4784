//! Tells the crate where `temporalio-protos` wrote the descriptor set of the protos it
//! compiled: embedded as `descriptor_set()`, and read by the tests to check every method of
//! the services is classified.

fn main() {
    if let Ok(path) = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH") {
        println!("cargo:rustc-env=TEMPORAL_DESCRIPTOR_SET_PATH={path}");
    }
    println!("cargo:rerun-if-env-changed=DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH");
}
