//! Every fuzz target, on stable, in every test run: seeds shaped like real input, then
//! `WARDEN_FUZZ_ITERATIONS` (default 5,000) seeded mutations each — byte flips, random bytes,
//! insertions, deletions, duplicated and spliced ranges, truncations. A panic fails the test
//! and prints the input that caused it. Not coverage-guided: libFuzzer runs (`fuzz/`) are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::{Rng, SeedableRng, rngs::StdRng};

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..5) {
        let len = data.len();
        match rng.gen_range(0..7) {
            0 if len > 0 => {
                let at = rng.gen_range(0..len);
                data[at] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let at = rng.gen_range(0..len);
                data[at] = rng.r#gen();
            }
            2 => {
                let at = rng.gen_range(0..=len);
                let extra: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.r#gen()).collect();
                data.splice(at..at, extra);
            }
            3 if len > 1 => {
                let from = rng.gen_range(0..len);
                let to = rng.gen_range(from..=len.min(from + 32));
                data.drain(from..to);
            }
            4 if len > 1 => {
                let from = rng.gen_range(0..len);
                let to = rng.gen_range(from..=len.min(from + 32));
                let copy = data[from..to].to_vec();
                let at = rng.gen_range(0..=len);
                data.splice(at..at, copy);
            }
            5 if len > 0 => data.truncate(rng.gen_range(0..len)),
            _ => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                let cut = rng.gen_range(0..=data.len());
                let from = rng.gen_range(0..=other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

#[test]
fn every_fuzz_target_survives_its_seeds_and_their_mutations() {
    let iterations: usize = std::env::var("WARDEN_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    for (name, target) in warden_fuzz::TARGETS {
        let seeds = warden_fuzz::seeds(name);
        let mut rng = StdRng::seed_from_u64(name.len() as u64 * 7919);
        let inputs = seeds
            .iter()
            .cloned()
            .chain((0..iterations).map(|_| mutate(&mut rng, &seeds)));
        for input in inputs {
            if std::panic::catch_unwind(|| target(&input)).is_err() {
                panic!(
                    "fuzz target `{name}` panicked on {} bytes: {:02x?}",
                    input.len(),
                    input
                );
            }
        }
        println!(
            "fuzz target {name}: {} seeds and {iterations} mutations",
            seeds.len()
        );
    }
}
