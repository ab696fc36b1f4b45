//! The server seen from outside: its memory (`/proc/<pid>/status`), the sizes of its data
//! directory and WAL file, and a [`Watch`] task that samples both a few times a second (the
//! WAL's largest size is only seen that way) and prints a progress line every few seconds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::machine::{own_cpu_time, process_cpu_time, system_busy_time};
use crate::stats::{bytes, rate};

/// The SQLite database file in the data directory.
pub const DB_FILE: &str = "lockgate.db";
/// Its write-ahead log.
pub const WAL_FILE: &str = "lockgate.db-wal";

/// How often the watch samples the WAL size and the server's RSS.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// A process's memory, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss: u64,
    /// The largest resident set size since the process started (`VmHWM`).
    pub peak: u64,
}

/// The memory of process `pid`; zeros when it cannot be read (not Linux, or the process is gone).
pub fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    Memory {
        rss: field("VmRSS:"),
        peak: field("VmHWM:"),
    }
}

/// The size of a file, 0 when it does not exist.
pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The total size of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// The sizes on disk at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Disk {
    /// Every file in the data directory.
    pub data_dir: u64,
    /// `lockgate.db`.
    pub database: u64,
    /// `lockgate.db-wal`.
    pub wal: u64,
}

/// The sizes of the data directory, the database and the WAL now.
pub fn disk(dir: &Path) -> Disk {
    Disk {
        data_dir: dir_size(dir),
        database: file_size(&dir.join(DB_FILE)),
        wal: file_size(&dir.join(WAL_FILE)),
    }
}

/// CPU time used over a window of the run, to tell a quiet run from a disturbed one.
pub struct CpuWindow {
    pid: u32,
    began: Instant,
    server: Duration,
    own: Duration,
    all: Duration,
}

/// What a [`CpuWindow`] saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    /// The window's length.
    pub wall: Duration,
    /// CPU time the server used.
    pub server: Duration,
    /// CPU time every other process used (this benchmark and the server excluded): far from
    /// zero means the figures were disturbed.
    pub others: Duration,
}

impl CpuWindow {
    /// Starts a window over server process `pid` (zeros where `/proc` cannot be read).
    pub fn start(pid: u32) -> CpuWindow {
        CpuWindow {
            pid,
            began: Instant::now(),
            server: server_cpu(pid),
            own: own_cpu_time().unwrap_or_default(),
            all: system_busy_time().unwrap_or_default(),
        }
    }

    /// What was used since the start.
    pub fn stop(&self) -> CpuUse {
        let server = server_cpu(self.pid).saturating_sub(self.server);
        let own = own_cpu_time().unwrap_or_default().saturating_sub(self.own);
        let all = system_busy_time()
            .unwrap_or_default()
            .saturating_sub(self.all);
        CpuUse {
            wall: self.began.elapsed(),
            server,
            others: all.saturating_sub(server + own),
        }
    }
}

impl CpuUse {
    /// Cores the server kept busy on average.
    pub fn server_cores(&self) -> f64 {
        self.server.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// Cores other processes kept busy on average.
    pub fn other_cores(&self) -> f64 {
        self.others.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

fn server_cpu(pid: u32) -> Duration {
    process_cpu_time(&format!("/proc/{pid}/stat")).unwrap_or_default()
}

/// Samples the server while the benchmark runs and reports progress on stderr.
pub struct Watch {
    pid: AtomicU32,
    wal: PathBuf,
    began: Instant,
    /// The current phase: its name, how many items it has to do, when it began.
    phase: Mutex<(String, usize, Instant)>,
    done: AtomicUsize,
    wal_max: AtomicU64,
    stopped: AtomicBool,
}

impl Watch {
    /// Starts watching process `pid` and the WAL in `data_dir`, printing progress every
    /// `print_every`.
    pub fn start(pid: u32, data_dir: &Path, print_every: Duration) -> Arc<Watch> {
        let watch = Arc::new(Watch {
            pid: AtomicU32::new(pid),
            wal: data_dir.join(WAL_FILE),
            began: Instant::now(),
            phase: Mutex::new((String::new(), 0, Instant::now())),
            done: AtomicUsize::new(0),
            wal_max: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let sampler = watch.clone();
        tokio::spawn(async move { sampler.sample(print_every).await });
        watch
    }

    /// Names what the benchmark does now and how many items it has to do (0: not counted), and
    /// prints it.
    pub fn phase(&self, name: &str, total: usize) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) =
            (name.to_owned(), total, Instant::now());
        self.done.store(0, Ordering::Relaxed);
        eprintln!("[{:7.1} s] {name}…", self.began.elapsed().as_secs_f64());
    }

    /// Counts `n` more items done in the current phase.
    pub fn add(&self, n: usize) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// The server process to watch from now on (after a restart).
    pub fn set_pid(&self, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
    }

    /// The largest WAL size sampled since the last call, and starts a new maximum.
    pub fn take_wal_max(&self) -> u64 {
        self.wal_max
            .swap(file_size(&self.wal), Ordering::Relaxed)
            .max(file_size(&self.wal))
    }

    /// Stops the sampling task.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    async fn sample(&self, print_every: Duration) {
        let mut last_print = Instant::now();
        while !self.stopped.load(Ordering::Relaxed) {
            tokio::time::sleep(SAMPLE_EVERY).await;
            let wal = file_size(&self.wal);
            self.wal_max.fetch_max(wal, Ordering::Relaxed);
            if last_print.elapsed() < print_every {
                continue;
            }
            last_print = Instant::now();
            let done = self.done.load(Ordering::Relaxed);
            let (phase, total, began) =
                self.phase.lock().unwrap_or_else(|p| p.into_inner()).clone();
            // The rate since the phase began: loading alternates creating and completing
            // chunks, so a rate over the last few seconds would swing with the chunks.
            let per_second = done as f64 / began.elapsed().as_secs_f64().max(1e-9);
            let count = match total {
                0 => String::new(),
                total => format!(
                    " {} of {} ({}/s{}),",
                    rate(done as f64),
                    rate(total as f64),
                    rate(per_second),
                    time_left(total.saturating_sub(done), per_second)
                ),
            };
            let memory = memory(self.pid.load(Ordering::Relaxed));
            eprintln!(
                "[{:7.1} s] {phase}:{count} server RSS {} (peak {}), WAL {}",
                self.began.elapsed().as_secs_f64(),
                bytes(memory.rss),
                bytes(memory.peak),
                bytes(wal),
            );
        }
    }
}

/// `, about 12 min left` at this rate; empty when nothing moves.
fn time_left(remaining: usize, per_second: f64) -> String {
    if per_second < 0.01 || remaining == 0 {
        return String::new();
    }
    let seconds = remaining as f64 / per_second;
    if seconds >= 90.0 {
        format!(", about {:.0} min left", seconds / 60.0)
    } else {
        format!(", about {seconds:.0} s left")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_set_no_larger_than_its_peak() {
        let m = memory(std::process::id());
        assert!(m.rss > 0);
        assert!(m.peak >= m.rss);
    }

    #[test]
    fn a_directory_size_counts_files_in_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 50]).unwrap();
        assert_eq!(dir_size(dir.path()), 150);
        assert_eq!(file_size(&dir.path().join("missing")), 0);
    }
}
