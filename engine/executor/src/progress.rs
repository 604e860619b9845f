//! An apply's progress on stderr: a bar at a terminal, a line every so often in a log.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How an apply shows its progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing (tests, embedders).
    #[default]
    Hidden,
    /// A bar with rows per second and time left (stderr is a terminal).
    Bar,
    /// A line with rows, rows per second and time left, at most once per this interval
    /// (stderr is a file or a CI log); an apply shorter than the interval prints nothing.
    Lines(Duration),
}

/// The progress of one execution.
pub(crate) struct Progress {
    bar: ProgressBar,
    lines: Option<Lines>,
}

struct Lines {
    every: Duration,
    total: u64,
    done: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    /// Progress over `total` operations.
    pub(crate) fn new(total: u64, mode: ProgressMode) -> Progress {
        let hidden = Progress {
            bar: ProgressBar::hidden(),
            lines: None,
        };
        match mode {
            _ if total == 0 => hidden,
            ProgressMode::Hidden => hidden,
            ProgressMode::Bar => {
                let bar = ProgressBar::new(total);
                if let Ok(style) = ProgressStyle::with_template(
                    "{spinner} {bar:40} {pos}/{len} rows ({per_sec}, eta {eta})",
                ) {
                    bar.set_style(style);
                }
                Progress { bar, lines: None }
            }
            ProgressMode::Lines(every) => {
                let now = Instant::now();
                Progress {
                    bar: ProgressBar::hidden(),
                    lines: Some(Lines {
                        every,
                        total,
                        done: 0,
                        started: now,
                        last: now,
                    }),
                }
            }
        }
    }

    /// `rows` more operations were answered.
    pub(crate) fn inc(&mut self, rows: u64) {
        self.bar.inc(rows);
        if let Some(lines) = &mut self.lines {
            lines.done += rows;
            if lines.last.elapsed() >= lines.every {
                lines.last = Instant::now();
                let _ = writeln!(std::io::stderr().lock(), "{}", lines.line());
            }
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Lines {
    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            self.done as f64 / elapsed
        } else {
            0.0
        };
        let left = self.total.saturating_sub(self.done);
        let eta = if rate > 0.0 {
            format!(", about {} left", human(left as f64 / rate))
        } else {
            String::new()
        };
        format!(
            "apply: {} of {} rows answered ({:.0} rows/s{eta})",
            self.done, self.total, rate
        )
    }
}

fn human(seconds: f64) -> String {
    let seconds = seconds.round() as u64;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_gives_rows_rate_and_time_left() {
        let lines = Lines {
            every: Duration::from_secs(10),
            total: 1000,
            done: 250,
            started: Instant::now() - Duration::from_secs(5),
            last: Instant::now(),
        };
        let line = lines.line();
        assert!(
            line.starts_with("apply: 250 of 1000 rows answered ("),
            "{line}"
        );
        assert!(line.contains(" rows/s, about "), "{line}");
        assert_eq!(human(42.0), "42 s");
        assert_eq!(human(125.0), "2 min 5 s");
        assert_eq!(human(7300.0), "2 h 1 min");
    }
}
