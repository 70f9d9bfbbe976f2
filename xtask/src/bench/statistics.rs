//! What one run of one route measured, and the medians and ratios over the rounds.

/// One measured run of one route.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sample {
    pub(super) rps: f64,
    /// Requests completed. Not req/s times the duration asked for: wrk runs a little
    /// longer than that, and per-request figures would come out high.
    pub(super) requests: u64,
    /// The server's CPU time (user + system) per request, in microseconds: steadier than
    /// req/s on a virtual machine whose neighbours steal time.
    pub(super) cpu_us: f64,
    pub(super) p50_us: f64,
    pub(super) p99_us: f64,
    pub(super) errors: u64,
    /// Store commands per request, where the store can count them (Redis).
    pub(super) commands: Option<f64>,
}

/// The ratios of req/s, library / baseline, each from one round's pair, which ran back to
/// back: their median, and the lowest and highest, how far one round can move the figure
/// on this machine. Pairing keeps a slow stretch of the machine from landing on one side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Ratios {
    pub(super) median: f64,
    pub(super) low: f64,
    pub(super) high: f64,
}

impl Ratios {
    /// The ratios of the rounds' pairs: `baseline[i]` ran with `library[i]`.
    pub(super) fn of(baseline: &[Sample], library: &[Sample]) -> Self {
        let mut ratios: Vec<f64> = baseline
            .iter()
            .zip(library)
            .map(|(baseline, library)| library.rps / baseline.rps)
            .collect();
        let median = median_of(&mut ratios);
        Self {
            median,
            low: ratios.first().copied().unwrap_or_default(),
            high: ratios.last().copied().unwrap_or_default(),
        }
    }
}

/// The median of `values`, which it leaves sorted: the middle one, or the mean of the
/// middle two.
fn median_of(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Each figure's median over `samples`, except errors, which add up.
pub(super) fn median(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| {
        let mut values: Vec<f64> = samples.iter().map(f).collect();
        median_of(&mut values)
    };
    let mut commands: Vec<f64> = samples.iter().filter_map(|s| s.commands).collect();
    Sample {
        rps: pick(|s| s.rps),
        requests: pick(|s| s.requests as f64) as u64,
        cpu_us: pick(|s| s.cpu_us),
        p50_us: pick(|s| s.p50_us),
        p99_us: pick(|s| s.p99_us),
        errors: samples.iter().map(|s| s.errors).sum(),
        commands: (!commands.is_empty()).then(|| median_of(&mut commands)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_pair_each_round_with_its_own_baseline() {
        let rps = |values: &[f64]| -> Vec<Sample> {
            values
                .iter()
                .map(|&rps| Sample {
                    rps,
                    ..Sample::default()
                })
                .collect()
        };
        // One fast stretch of the machine (round 2) would make the ratio of the medians
        // 270 / 200 = 1.35; the rounds' own ratios are 0.95, 1.5 and 0.9.
        let ratios = Ratios::of(&rps(&[100.0, 200.0, 300.0]), &rps(&[95.0, 300.0, 270.0]));
        assert_eq!(
            ratios,
            Ratios {
                median: 0.95,
                low: 0.9,
                high: 1.5
            }
        );
        let even = Ratios::of(&rps(&[100.0, 100.0]), &rps(&[90.0, 80.0]));
        assert!((even.median - 0.85).abs() < 1e-9, "{even:?}");
    }
}
