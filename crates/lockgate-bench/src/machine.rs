//! What the figures depend on: CPUs, kernel, load, the file system under the data directory and
//! what an fsync costs on it, and per-process CPU time (Linux `/proc`; elsewhere "unknown").

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use crate::stats::Summary;

/// A description of the machine the benchmark runs on.
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// The kernel release.
    pub kernel: String,
    /// The 1/5/15-minute load averages when the benchmark started.
    pub load_average: String,
    /// The file system type and device under the data directory.
    pub file_system: String,
}

impl Machine {
    /// Describes this machine, with `data_parent` as the directory whose file system matters.
    pub fn describe(data_parent: &Path) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average: load_average(),
            file_system: file_system(data_parent),
        }
    }
}

/// The 1/5/15-minute load averages, e.g. `0.12 0.30 0.41`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// `type (device)` of the mount holding `path`.
fn file_system(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount)
                .then(|| (mount.len(), format!("{kind} ({device})")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs)| fs)
        .unwrap_or_else(|| "unknown".into())
}

/// The cost of durable 4 KiB writes in a directory, the way SQLite's WAL pays it.
pub struct FsyncCost {
    /// Overwriting 4 KiB in place, then `fdatasync` (a WAL that is being reused).
    pub overwrite_fdatasync: Summary,
    /// Appending 4 KiB, then `fsync` (a WAL that grows; the size change is journalled too).
    pub append_fsync: Summary,
}

/// Times `rounds` durable 4 KiB writes of each kind in a scratch file inside `dir`.
pub fn measure_fsync(dir: &Path, rounds: usize) -> anyhow::Result<FsyncCost> {
    let path = dir.join("fsync-probe");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let block = [0x5au8; 4096];
    file.write_all_at(&block, 0)?;
    file.sync_all()?;
    let mut overwrite = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        file.write_all_at(&block, 0)?;
        file.sync_data()?;
        overwrite.push(started.elapsed());
    }
    let mut append = Vec::with_capacity(rounds);
    let mut appender = OpenOptions::new().append(true).open(&path)?;
    for _ in 0..rounds {
        let started = Instant::now();
        appender.write_all(&block)?;
        appender.sync_all()?;
        append.push(started.elapsed());
    }
    drop((file, appender));
    std::fs::remove_file(&path)?;
    Ok(FsyncCost {
        overwrite_fdatasync: Summary::of(overwrite),
        append_fsync: Summary::of(append),
    })
}

/// User plus system CPU time of a process (all threads), from a `/proc/<pid>/stat` file.
pub fn process_cpu_time(stat_path: &str) -> anyhow::Result<Duration> {
    let stat =
        std::fs::read_to_string(stat_path).with_context(|| format!("reading {stat_path}"))?;
    // The command name is in parentheses and may contain spaces; the fields after it are fixed.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("unexpected {stat_path}"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `utime` and `stime` are fields 14 and 15 of the file; the first field after the name is 3.
    let ticks: u64 = [11, 12]
        .iter()
        .map(|&i| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second(),
    ))
}

/// CPU time every process on the machine has used since boot (all CPUs, idle and I/O wait
/// excluded), from `/proc/stat`.
pub fn system_busy_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let cpu = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("no cpu line in /proc/stat"))?;
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    let ticks: u64 = cpu
        .split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, f)| f.parse::<u64>().ok())
        .sum();
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second(),
    ))
}

/// This process's CPU time so far.
pub fn own_cpu_time() -> anyhow::Result<Duration> {
    process_cpu_time("/proc/self/stat")
}

/// `getconf CLK_TCK`, the unit of `/proc/<pid>/stat` times (100 on every common Linux).
fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}
