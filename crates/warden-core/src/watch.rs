//! Polling a file that an operator edits in place (a rules file, an attribute model) and
//! handing over each new version once it is whole.
//!
//! A version is taken only when two reads a settle interval apart agree on the text, the
//! length and the modification time, and each read saw the same metadata before and after
//! it. A file caught mid-write — even one rewritten over and over with the same first half —
//! is never taken for a shorter valid file: every write moves the modification time. Writing
//! the file atomically (a temporary file renamed over it) is still the surest way.

use std::{
    path::PathBuf,
    sync::{Arc, Weak},
    time::{Duration, SystemTime},
};

/// One read of the file that no write overlapped.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    text: String,
    modified: Option<SystemTime>,
    len: u64,
}

impl Snapshot {
    /// Reads `path`, or `None` when it cannot be read or changed while it was read.
    fn read(path: &std::path::Path) -> Option<Self> {
        let before = std::fs::metadata(path).ok()?;
        let text = std::fs::read_to_string(path).ok()?;
        let after = std::fs::metadata(path).ok()?;
        let (modified, len) = (after.modified().ok(), after.len());
        let still = before.modified().ok() == modified && before.len() == len;
        (still && text.len() as u64 == len).then_some(Self {
            text,
            modified,
            len,
        })
    }
}

/// Polls `path` every `every` on the Tokio runtime until `owner` is dropped, and calls
/// `changed(owner, text)` with each new version once it has settled (see the
/// [module docs](self)). `changed` decides what to do with it, including ignoring a text it
/// already has: the first poll hands over the file as it is.
///
/// Must be called inside a Tokio runtime.
pub fn watch_file<T, F>(owner: Weak<T>, path: PathBuf, every: Duration, changed: F)
where
    T: Send + Sync + 'static,
    F: Fn(&Arc<T>, String) + Send + 'static,
{
    // Longer than a writer's pause between chunks, shorter than an edit cycle.
    let settle = every.min(Duration::from_millis(50));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<String> = None;
        loop {
            ticks.tick().await;
            if owner.strong_count() == 0 {
                return;
            }
            let Some(first) = Snapshot::read(&path) else {
                continue;
            };
            if last.as_deref() == Some(first.text.as_str()) {
                continue;
            }
            tokio::time::sleep(settle).await;
            if Snapshot::read(&path).as_ref() != Some(&first) {
                continue;
            }
            let Some(owner) = owner.upgrade() else {
                return;
            };
            changed(&owner, first.text.clone());
            last = Some(first.text);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{
            Mutex,
            atomic::{AtomicBool, Ordering},
        },
    };

    use super::*;

    const END: &str = "# end\n";

    /// Version `n`: a few hundred bytes, whole only with its last line. Every version has the
    /// same first half, so two reads of two different half-written versions agree on the text.
    fn version(n: u32) -> String {
        format!("{}v{n}\n{END}", "filler ".repeat(100))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_rewritten_in_place_is_only_ever_handed_over_whole() {
        let path = std::env::temp_dir().join(format!("warden-watch-rw-{}", std::process::id()));
        std::fs::write(&path, version(0)).unwrap();
        let taken = Arc::new(Mutex::new(Vec::<String>::new()));
        watch_file(
            Arc::downgrade(&taken),
            path.clone(),
            Duration::from_millis(20),
            |taken, text| taken.lock().unwrap().push(text),
        );
        // Rewritten in place every ~25 ms: the first half, a 10 ms pause, the rest. Two
        // pauses are often a settle interval (50 ms) apart: comparing text alone would take
        // the half file.
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (path, stop) = (path.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let text = version(n);
                    let (first, rest) = text.as_bytes().split_at(text.len() / 2);
                    let mut file = std::fs::File::create(&path).unwrap();
                    file.write_all(first).unwrap();
                    std::thread::sleep(Duration::from_millis(10));
                    file.write_all(rest).unwrap();
                    drop(file);
                    // Every few versions the file rests, so some are taken.
                    let rest = if n % 8 == 0 { 120 } else { 15 };
                    std::thread::sleep(Duration::from_millis(rest));
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let taken = taken.lock().unwrap().clone();
        std::fs::remove_file(&path).unwrap();
        assert!(taken.len() >= 3, "only {} versions taken", taken.len());
        for text in &taken {
            assert!(
                text.ends_with(END),
                "a partial file was handed over: {text:?}"
            );
        }
    }

    #[test]
    fn a_snapshot_holds_the_whole_file_with_its_metadata() {
        let path = std::env::temp_dir().join(format!("warden-watch-{}", std::process::id()));
        std::fs::write(&path, "a = 1\n").unwrap();
        let snapshot = Snapshot::read(&path).unwrap();
        assert_eq!(snapshot.text, "a = 1\n");
        assert_eq!(snapshot.len, 6);
        assert_eq!(Snapshot::read(&path), Some(snapshot));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(Snapshot::read(&path), None);
    }
}
