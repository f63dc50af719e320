//! Medians, extremes and the printed table.

use std::time::Duration;

use crate::runtime::Sample;

/// Summary of one runtime's samples for one measurement.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median wall time.
    pub median: Duration,
    /// Fastest.
    pub min: Duration,
    /// Slowest.
    pub max: Duration,
    /// Median peak RSS, KiB.
    pub rss_kib: u64,
}

/// Median of a sorted slice of durations (mean of the middle two for an even count).
fn median_sorted(v: &[Duration]) -> Duration {
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// Summarises `samples`; `None` when there are none.
pub fn summarize(samples: &[Sample]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    walls.sort_unstable();
    let mut rss: Vec<u64> = samples.iter().map(|s| s.maxrss_kib).collect();
    rss.sort_unstable();
    Some(Summary {
        n: samples.len(),
        median: median_sorted(&walls),
        min: walls[0],
        max: walls[walls.len() - 1],
        rss_kib: rss[rss.len() / 2],
    })
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// `a / b` as `0.64x`, or `n/a`.
pub fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "n/a".into()
    }
}

/// Mebibytes with one decimal.
pub fn mib(kib: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let v = kib as f64 / 1024.0;
    format!("{v:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64, rss: u64) -> Sample {
        Sample {
            wall: Duration::from_millis(ms),
            maxrss_kib: rss,
        }
    }

    #[test]
    fn median_min_max() {
        let sum = summarize(&[s(5, 10), s(1, 30), s(3, 20)]).unwrap();
        assert_eq!(sum.median, Duration::from_millis(3));
        assert_eq!(sum.min, Duration::from_millis(1));
        assert_eq!(sum.max, Duration::from_millis(5));
        assert_eq!(sum.rss_kib, 20);
        let even = summarize(&[s(2, 1), s(4, 1)]).unwrap();
        assert_eq!(even.median, Duration::from_millis(3));
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn ratio_format() {
        assert_eq!(ratio(1.0, 2.0), "0.50x");
        assert_eq!(ratio(0.0, 2.0), "n/a");
    }
}
