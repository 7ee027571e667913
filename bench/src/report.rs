//! Summaries of the samples, the targets, and how they print (table or JSON).

use std::fmt;

use serde::Serialize;

use crate::probe::Sample;

/// Target: median cold start under this many milliseconds.
pub const COLD_START_LIMIT_MS: f64 = 30.0;
/// Target: median cold start under this multiple of the baseline's.
pub const COLD_START_RATIO_LIMIT: f64 = 2.0;
/// Target: median idle resident memory under this many MiB.
pub const IDLE_RSS_LIMIT_MIB: f64 = 30.0;

/// One binary's numbers over all measured runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub cold_start_median_ms: f64,
    pub cold_start_p90_ms: f64,
    /// Median `VmRSS` after the idle wait.
    pub idle_rss_mib: f64,
    /// Highest `VmHWM` seen at the first `200`.
    pub peak_rss_mib: f64,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[Sample]) -> Option<Self> {
        let mut cold: Vec<f64> = samples.iter().map(|s| s.cold_start.as_secs_f64() * 1000.0).collect();
        let mut idle: Vec<f64> = samples.iter().map(|s| kib_to_mib(s.idle_rss_kib)).collect();
        cold.sort_by(f64::total_cmp);
        idle.sort_by(f64::total_cmp);
        Some(Self {
            cold_start_median_ms: median(&cold)?,
            cold_start_p90_ms: percentile(&cold, 0.9)?,
            idle_rss_mib: median(&idle)?,
            peak_rss_mib: samples.iter().map(|s| kib_to_mib(s.peak_rss_kib)).max_by(f64::total_cmp)?,
        })
    }
}

/// Candidate divided by baseline, per column.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ratios {
    pub cold_start_median: f64,
    pub cold_start_p90: f64,
    pub idle_rss: f64,
    pub peak_rss: f64,
}

/// One target and whether the candidate met it.
#[derive(Debug, Serialize)]
pub struct Check {
    pub target: String,
    pub actual: String,
    pub met: bool,
}

/// A measured binary: how it was started and its numbers.
#[derive(Debug, Serialize)]
pub struct Measured {
    pub command: String,
    #[serde(flatten)]
    pub summary: Summary,
    /// Every measured cold start, in run order.
    pub cold_starts_ms: Vec<f64>,
}

impl Measured {
    /// Summarises `samples` of the binary started by `command`; `None` when there are none.
    pub fn new(command: String, samples: &[Sample]) -> Option<Self> {
        let cold_starts_ms = samples.iter().map(|s| s.cold_start.as_secs_f64() * 1000.0).collect();
        Some(Self { command, summary: Summary::of(samples)?, cold_starts_ms })
    }
}

/// The whole result of a benchmark.
#[derive(Debug, Serialize)]
pub struct Report {
    pub runs: usize,
    pub warmup_runs: usize,
    pub candidate: Measured,
    pub baseline: Measured,
    pub ratios: Ratios,
    pub targets: Vec<Check>,
    pub all_targets_met: bool,
}

impl Report {
    pub fn new(runs: usize, warmup_runs: usize, candidate: Measured, baseline: Measured) -> Self {
        let (c, b) = (&candidate.summary, &baseline.summary);
        let ratios = Ratios {
            cold_start_median: c.cold_start_median_ms / b.cold_start_median_ms,
            cold_start_p90: c.cold_start_p90_ms / b.cold_start_p90_ms,
            idle_rss: c.idle_rss_mib / b.idle_rss_mib,
            peak_rss: c.peak_rss_mib / b.peak_rss_mib,
        };
        let targets = vec![
            Check {
                target: format!("median cold start < {COLD_START_LIMIT_MS} ms"),
                actual: format!("{:.2} ms", c.cold_start_median_ms),
                met: c.cold_start_median_ms < COLD_START_LIMIT_MS,
            },
            Check {
                target: format!("median cold start < {COLD_START_RATIO_LIMIT}x baseline"),
                actual: format!("{:.2}x", ratios.cold_start_median),
                met: ratios.cold_start_median < COLD_START_RATIO_LIMIT,
            },
            Check {
                target: format!("median idle RSS < {IDLE_RSS_LIMIT_MIB} MiB"),
                actual: format!("{:.1} MiB", c.idle_rss_mib),
                met: c.idle_rss_mib < IDLE_RSS_LIMIT_MIB,
            },
        ];
        let all_targets_met = targets.iter().all(|t| t.met);
        Self { runs, warmup_runs, candidate, baseline, ratios, targets, all_targets_met }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} measured starts per binary, alternating, after {} warm-up", self.runs, self.warmup_runs)?;
        writeln!(f, "  candidate: {}", self.candidate.command)?;
        writeln!(f, "  baseline:  {}", self.baseline.command)?;
        writeln!(f)?;
        writeln!(f, "{:<20} {:>14} {:>14} {:>14} {:>14}", "", "cold median", "cold p90", "idle RSS", "peak RSS")?;
        for (name, s) in [("candidate", &self.candidate.summary), ("baseline", &self.baseline.summary)] {
            writeln!(
                f,
                "{name:<20} {:>11.2} ms {:>11.2} ms {:>10.1} MiB {:>10.1} MiB",
                s.cold_start_median_ms, s.cold_start_p90_ms, s.idle_rss_mib, s.peak_rss_mib
            )?;
        }
        let r = &self.ratios;
        writeln!(
            f,
            "{:<20} {:>13.2}x {:>13.2}x {:>13.2}x {:>13.2}x",
            "candidate/baseline", r.cold_start_median, r.cold_start_p90, r.idle_rss, r.peak_rss
        )?;
        writeln!(f)?;
        writeln!(f, "targets:")?;
        for check in &self.targets {
            let verdict = if check.met { "met" } else { "MISSED" };
            writeln!(f, "  {:<36} {verdict:<7} ({})", check.target, check.actual)?;
        }
        Ok(())
    }
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Median of ascending `sorted`.
pub(crate) fn median(sorted: &[f64]) -> Option<f64> {
    let mid = sorted.len() / 2;
    let upper = *sorted.get(mid)?;
    if sorted.len() % 2 == 1 { Some(upper) } else { Some((sorted.get(mid - 1)? + upper) / 2.0) }
}

/// Nearest-rank percentile (`p` in 0..=1) of ascending `sorted`.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sample(ms: u64, idle_kib: u64, peak_kib: u64) -> Sample {
        Sample { cold_start: Duration::from_millis(ms), peak_rss_kib: peak_kib, idle_rss_kib: idle_kib }
    }

    #[test]
    fn median_and_nearest_rank_percentile() {
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median(&ten), Some(5.5));
        assert_eq!(median(&[1.0, 2.0, 9.0]), Some(2.0));
        assert_eq!(median(&[]), None);
        assert_eq!(percentile(&ten, 0.9), Some(9.0));
        assert_eq!(percentile(&[4.0], 0.9), Some(4.0));
        assert_eq!(percentile(&[], 0.9), None);
    }

    #[test]
    fn summary_sorts_before_taking_statistics() {
        let samples = [sample(30, 3072, 4096), sample(10, 1024, 8192), sample(20, 2048, 2048)];
        let summary = Summary::of(&samples).expect("three samples");
        assert_eq!(summary.cold_start_median_ms, 20.0);
        assert_eq!(summary.cold_start_p90_ms, 30.0);
        assert_eq!(summary.idle_rss_mib, 2.0);
        assert_eq!(summary.peak_rss_mib, 8.0);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn targets_compare_candidate_with_limits_and_baseline() {
        let fast = Measured::new("fast".into(), &[sample(5, 10 * 1024, 12 * 1024)]).expect("one sample");
        let slow = Measured::new("slow".into(), &[sample(40, 40 * 1024, 50 * 1024)]).expect("one sample");
        let report = Report::new(1, 1, fast, slow);
        assert!(report.all_targets_met, "{report}");

        let fast = Measured::new("fast".into(), &[sample(5, 10 * 1024, 12 * 1024)]).expect("one sample");
        let slow = Measured::new("slow".into(), &[sample(40, 40 * 1024, 50 * 1024)]).expect("one sample");
        let report = Report::new(1, 1, slow, fast);
        assert_eq!(report.targets.iter().filter(|t| !t.met).count(), 3, "{report}");
    }
}
