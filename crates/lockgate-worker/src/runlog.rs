//! A run's output: stdout and stderr lines, each with the time it was read, kept as a tail
//! within a size bound (the oldest lines go first), so a build that prints gigabytes costs a
//! bounded amount of memory and its end, where failures are explained, is always kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The default bound of a run's kept output.
pub const DEFAULT_LOG_BYTES: usize = 1 << 20;

/// A run's output, shared between the tasks that read the process's streams and whoever shows
/// it. Cloning shares the same log.
#[derive(Clone)]
pub struct RunLog {
    inner: Arc<Mutex<Tail>>,
}

struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
    limit: usize,
    dropped: u64,
    /// Counts every line ever added, so a reader can tell that the log changed.
    written: u64,
}

impl RunLog {
    /// An empty log keeping at most `limit` bytes of lines.
    pub fn new(limit: usize) -> RunLog {
        RunLog {
            inner: Arc::new(Mutex::new(Tail {
                lines: VecDeque::new(),
                bytes: 0,
                limit: limit.max(1),
                dropped: 0,
                written: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tail> {
        // A log line half added cannot exist (each change is one push or pop): recover.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one line of output, stamped with `at`.
    pub fn line_at(&self, at: OffsetDateTime, text: &str) {
        let stamp = at
            .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        let line = format!("{stamp} {}", text.trim_end_matches(['\n', '\r']));
        let mut tail = self.lock();
        tail.bytes += line.len() + 1;
        tail.lines.push_back(line);
        tail.written += 1;
        while tail.bytes > tail.limit && tail.lines.len() > 1 {
            if let Some(old) = tail.lines.pop_front() {
                tail.bytes -= old.len() + 1;
                tail.dropped += 1;
            }
        }
    }

    /// Adds one line of output, stamped now.
    pub fn line(&self, text: &str) {
        let now = lockgate_model::Clock::now_system(&lockgate_model::SystemClock);
        self.line_at(OffsetDateTime::from(now), text);
    }

    /// How many lines were ever added (it changes whenever the log does).
    pub fn written(&self) -> u64 {
        self.lock().written
    }

    /// The kept output as text, preceded by a line saying how many earlier lines were dropped.
    pub fn text(&self) -> String {
        let tail = self.lock();
        let mut out = String::with_capacity(tail.bytes + 64);
        if tail.dropped > 0 {
            out.push_str(&format!(
                "[{} earlier lines dropped: a run keeps the last {} bytes of its output]\n",
                tail.dropped, tail.limit
            ));
        }
        for line in &tail.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The last lines of output, at most `max_chars` characters, whole lines only (for a
    /// failure's `errorDetails`).
    pub fn last_lines(&self, max_chars: usize) -> String {
        let tail = self.lock();
        let mut picked = Vec::new();
        let mut used = 0;
        for line in tail.lines.iter().rev() {
            let n = line.chars().count() + 1;
            if used + n > max_chars {
                break;
            }
            used += n;
            picked.push(line.as_str());
        }
        picked.reverse();
        picked.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_kept_within_the_bound_and_the_drop_is_said() {
        let log = RunLog::new(100);
        let at = OffsetDateTime::UNIX_EPOCH;
        for i in 0..50 {
            log.line_at(at, &format!("line {i}"));
        }
        let text = log.text();
        assert!(text.starts_with("["), "{text}");
        assert!(text.contains("earlier lines dropped"), "{text}");
        assert!(text.ends_with("1970-01-01T00:00:00Z line 49\n"), "{text}");
        assert!(!text.contains("line 1\n"), "{text}");
        assert_eq!(log.written(), 50);
    }

    #[test]
    fn last_lines_are_whole_and_within_the_limit() {
        let log = RunLog::new(10_000);
        let at = OffsetDateTime::UNIX_EPOCH;
        log.line_at(at, "first");
        log.line_at(at, "second\n");
        let last = log.last_lines(30);
        assert_eq!(last, "1970-01-01T00:00:00Z second");
        assert_eq!(log.last_lines(5), "");
    }
}
