//! The backup benchmark's summary per object count, its targets, and how it prints.

use std::fmt;

use serde::Serialize;

use super::child::Outcome;
use crate::report::{Check, median};

/// Target: export time at most this multiple of the raw list's.
pub const RATIO_LIMIT: f64 = 1.3;
/// Target: export peak RSS under this many MiB at every count.
pub const PEAK_RSS_LIMIT_MIB: f64 = 150.0;
/// Target: "flat" peak RSS: at the largest count at most this multiple of the smallest's.
pub const RSS_GROWTH_LIMIT: f64 = 1.25;

/// One mode's numbers at one object count.
#[derive(Debug, Clone, Serialize)]
pub struct ModeSummary {
    pub median_s: f64,
    /// Every measured run, in run order.
    pub runs_s: Vec<f64>,
    /// The highest child `VmHWM` over the runs.
    pub peak_rss_mib: f64,
    /// Objects listed or exported (the same in every run).
    pub objects: u64,
}

impl ModeSummary {
    /// Summarises `outcomes`; `None` when there are none.
    pub fn of(outcomes: &[Outcome]) -> Option<Self> {
        let runs_s: Vec<f64> = outcomes.iter().map(|o| o.seconds).collect();
        let mut sorted = runs_s.clone();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            median_s: median(&sorted)?,
            runs_s,
            peak_rss_mib: outcomes.iter().map(|o| o.peak_rss_kib as f64 / 1024.0).max_by(f64::total_cmp)?,
            objects: outcomes.iter().map(|o| o.objects).max()?,
        })
    }
}

/// Both modes at one object count.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Objects seeded (besides the namespaces).
    pub seeded: usize,
    pub baseline: ModeSummary,
    pub export: ModeSummary,
    /// Export median over baseline median.
    pub ratio: f64,
    /// Archive size of the last export.
    pub archive_mib: f64,
}

impl Row {
    /// Pairs the runs of one count; `None` when either mode has none.
    pub fn new(seeded: usize, baseline: &[Outcome], export: &[Outcome]) -> Option<Self> {
        let (baseline_summary, export_summary) = (ModeSummary::of(baseline)?, ModeSummary::of(export)?);
        let archive_bytes = export.iter().rev().find_map(|o| o.stored_bytes).unwrap_or_default();
        Some(Self {
            seeded,
            ratio: export_summary.median_s / baseline_summary.median_s,
            baseline: baseline_summary,
            export: export_summary,
            archive_mib: archive_bytes as f64 / (1024.0 * 1024.0),
        })
    }
}

/// The whole result.
#[derive(Debug, Serialize)]
pub struct Report {
    pub runs: usize,
    pub page_size: u32,
    pub concurrency: usize,
    pub rows: Vec<Row>,
    pub targets: Vec<Check>,
    pub all_targets_met: bool,
}

impl Report {
    pub fn new(runs: usize, page_size: u32, concurrency: usize, rows: Vec<Row>) -> Self {
        let mut targets = Vec::new();
        for row in &rows {
            targets.push(Check {
                target: format!("{} objects: export <= {RATIO_LIMIT}x list", row.seeded),
                actual: format!("{:.2}x", row.ratio),
                met: row.ratio <= RATIO_LIMIT,
            });
            targets.push(Check {
                target: format!("{} objects: export peak RSS < {PEAK_RSS_LIMIT_MIB} MiB", row.seeded),
                actual: format!("{:.1} MiB", row.export.peak_rss_mib),
                met: row.export.peak_rss_mib < PEAK_RSS_LIMIT_MIB,
            });
        }
        let smallest = rows.iter().min_by_key(|r| r.seeded);
        let largest = rows.iter().max_by_key(|r| r.seeded);
        if let (Some(small), Some(large)) = (smallest, largest)
            && large.seeded > small.seeded
        {
            let growth = large.export.peak_rss_mib / small.export.peak_rss_mib;
            targets.push(Check {
                target: format!(
                    "export peak RSS flat: {}/{} objects <= {RSS_GROWTH_LIMIT}x",
                    large.seeded, small.seeded
                ),
                actual: format!("{growth:.2}x"),
                met: growth <= RSS_GROWTH_LIMIT,
            });
        }
        let all_targets_met = targets.iter().all(|t| t.met);
        Self { runs, page_size, concurrency, rows, targets, all_targets_met }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} measured runs per mode, alternating, each in a fresh process; page size {}, {} lists at once",
            self.runs, self.page_size, self.concurrency
        )?;
        writeln!(f, "  baseline: raw parallel list through the Cluster port (items counted and dropped)")?;
        writeln!(f, "  export:   export() into a local-directory object store (tar + zstd, digests)")?;
        writeln!(f)?;
        writeln!(
            f,
            "{:>9} {:>12} {:>12} {:>8} {:>14} {:>14} {:>10}",
            "objects", "list median", "export med.", "ratio", "export peak", "list peak", "archive"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:>9} {:>10.3} s {:>10.3} s {:>7.2}x {:>10.1} MiB {:>10.1} MiB {:>6.1} MiB",
                r.seeded,
                r.baseline.median_s,
                r.export.median_s,
                r.ratio,
                r.export.peak_rss_mib,
                r.baseline.peak_rss_mib,
                r.archive_mib
            )?;
        }
        writeln!(f)?;
        writeln!(f, "targets:")?;
        for check in &self.targets {
            let verdict = if check.met { "met" } else { "MISSED" };
            writeln!(f, "  {:<48} {verdict:<7} ({})", check.target, check.actual)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::args::Mode;

    fn outcome(mode: Mode, seconds: f64, peak_mib: u64) -> Outcome {
        Outcome { mode, objects: 10, seconds, peak_rss_kib: peak_mib * 1024, stored_bytes: Some(1024 * 1024) }
    }

    fn row(seeded: usize, list_s: f64, export_s: f64, peak_mib: u64) -> Row {
        let baseline = [outcome(Mode::List, list_s, 10), outcome(Mode::List, list_s * 3.0, 11)];
        let baseline = [baseline[0], baseline[1], outcome(Mode::List, list_s / 2.0, 9)];
        let export = [outcome(Mode::Export, export_s, peak_mib)];
        Row::new(seeded, &baseline, &export).expect("runs of both modes")
    }

    #[test]
    fn ratio_is_of_medians_and_peak_is_the_highest() {
        let r = row(100, 2.0, 2.5, 40);
        assert_eq!(r.baseline.median_s, 2.0);
        assert_eq!(r.baseline.peak_rss_mib, 11.0);
        assert_eq!(r.ratio, 1.25);
        assert_eq!(r.archive_mib, 1.0);
        assert!(Row::new(1, &[], &[outcome(Mode::Export, 1.0, 1)]).is_none());
    }

    #[test]
    fn targets_cover_ratio_rss_and_flatness() {
        let report = Report::new(3, 500, 4, vec![row(100, 2.0, 2.5, 40), row(500, 10.0, 12.0, 45)]);
        assert_eq!(report.targets.len(), 5);
        assert!(report.all_targets_met, "{report}");

        let report = Report::new(3, 500, 4, vec![row(100, 2.0, 2.5, 40), row(500, 10.0, 14.0, 160)]);
        let missed: Vec<&str> = report.targets.iter().filter(|t| !t.met).map(|t| t.target.as_str()).collect();
        assert_eq!(missed.len(), 3, "{report}");
        assert!(missed.iter().any(|t| t.contains("flat")));
    }
}
