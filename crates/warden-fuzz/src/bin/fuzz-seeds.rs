//! `fuzz-seeds DIR`: writes every target's seeds to `DIR/TARGET/seed-N`, the corpus
//! directories `cargo fuzz run TARGET DIR/TARGET` starts from (`scripts/fuzz.sh`).

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1).map(std::path::PathBuf::from) else {
        eprintln!("usage: fuzz-seeds DIR");
        std::process::exit(2);
    };
    for (name, _) in warden_fuzz::TARGETS {
        let target = dir.join(name);
        std::fs::create_dir_all(&target)?;
        for (i, seed) in warden_fuzz::seeds(name).iter().enumerate() {
            std::fs::write(target.join(format!("seed-{i}")), seed)?;
        }
    }
    Ok(())
}
