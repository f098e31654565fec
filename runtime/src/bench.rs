//! Wall-clock benchmarking of an artifact's entry point.
//!
//! [`Artifact::bench`] checks the inputs and builds the pointer arrays once,
//! then times only the entry calls: `warmup` untimed calls followed by `iters`
//! timed ones, each measured with [`std::time::Instant`]. Outputs are
//! allocated once and reused, so allocation never shows in the numbers. Any
//! failing call aborts the benchmark with its error.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::artifact::Artifact;
use crate::error::{RuntimeError, RuntimeResult};
use crate::tensor::HostTensor;

/// Summary of the timed calls of a benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchStats {
    /// The fastest call.
    pub min: Duration,
    /// The median call (the mean of the two middle calls for an even count).
    pub median: Duration,
    /// The mean call.
    pub mean: Duration,
    /// The number of timed calls.
    pub iters: usize,
}

impl BenchStats {
    /// Summarizes per-call times; `None` when there are none.
    pub fn from_samples(samples: &[Duration]) -> Option<BenchStats> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        let total: Duration = sorted.iter().sum();
        let mean = Duration::from_nanos((total.as_nanos() / n as u128) as u64);
        Some(BenchStats {
            min: sorted[0],
            median,
            mean,
            iters: n,
        })
    }
}

impl fmt::Display for BenchStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "min {:.3} ms, median {:.3} ms, mean {:.3} ms over {} runs",
            self.min.as_secs_f64() * 1e3,
            self.median.as_secs_f64() * 1e3,
            self.mean.as_secs_f64() * 1e3,
            self.iters
        )
    }
}

impl Artifact {
    /// Times the entry on `inputs`: `warmup` untimed calls, then `iters` timed ones.
    ///
    /// The inputs are checked as [`Artifact::run`] checks them; `iters` must be
    /// at least 1.
    pub fn bench(
        &self,
        inputs: &BTreeMap<String, HostTensor>,
        warmup: usize,
        iters: usize,
    ) -> RuntimeResult<BenchStats> {
        if iters == 0 {
            return Err(RuntimeError::NoBenchIterations);
        }
        let ordered = self.check_inputs(inputs)?;
        let mut outputs = self.zeroed_outputs();
        let mut call = self.prepare(&ordered, &mut outputs);
        for _ in 0..warmup {
            call.invoke()?;
        }
        let mut samples = Vec::with_capacity(iters);
        for _ in 0..iters {
            let start = Instant::now();
            call.invoke()?;
            samples.push(start.elapsed());
        }
        Ok(BenchStats::from_samples(&samples).expect("iters >= 1 gives samples"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn stats_of_odd_and_even_counts() {
        let s = BenchStats::from_samples(&[ms(5), ms(1), ms(3)]).unwrap();
        assert_eq!((s.min, s.median, s.mean, s.iters), (ms(1), ms(3), ms(3), 3));
        let s = BenchStats::from_samples(&[ms(4), ms(1), ms(9), ms(2)]).unwrap();
        assert_eq!((s.min, s.median, s.mean), (ms(1), ms(3), ms(4)));
        assert!(BenchStats::from_samples(&[]).is_none());
        assert_eq!(
            s.to_string(),
            "min 1.000 ms, median 3.000 ms, mean 4.000 ms over 4 runs"
        );
    }
}
