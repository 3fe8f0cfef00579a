//! Timing of the Approach-3 fit for the comparison with the SciPy peer
//! (`crates/scaling-fit/peer/approach3_scipy.py`).

use std::path::Path;
use std::time::Instant;

use datasets::scaling::EpochChinchillaOptions;

use super::{Step, StudyError, check_dir};
use crate::chinchilla::{ChinchillaConfig, ChinchillaLaw, fit_chinchilla};

/// The Approach-3 fit on Epoch AI's Chinchilla runs, timed on all cores and on one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Approach3Bench {
    /// Runs fitted.
    pub points: usize,
    /// L-BFGS starts.
    pub starts: usize,
    /// Cores available.
    pub threads: usize,
    /// Wall-clock seconds on all cores.
    pub seconds_all_cores: f64,
    /// Wall-clock seconds on one core.
    pub seconds_one_core: f64,
    /// The fitted law (identical on one core and on all).
    pub law: ChinchillaLaw,
    /// The Huber objective at the optimum.
    pub objective: f64,
}

impl Approach3Bench {
    /// One line of JSON: `points`, `starts`, `threads`, `seconds_all_cores`,
    /// `seconds_one_core`, `E`, `A`, `B`, `alpha`, `beta`, `objective`.
    pub fn to_json_line(&self) -> String {
        let l = &self.law;
        format!(
            "{{\"points\": {}, \"starts\": {}, \"threads\": {}, \"seconds_all_cores\": {:.4}, \"seconds_one_core\": {:.4}, \"E\": {}, \"A\": {}, \"B\": {}, \"alpha\": {}, \"beta\": {}, \"objective\": {}}}",
            self.points,
            self.starts,
            self.threads,
            self.seconds_all_cores,
            self.seconds_one_core,
            l.e,
            l.a,
            l.b,
            l.alpha,
            l.beta,
            self.objective
        )
    }
}

/// Fits Approach 3 (the 4 500-start grid) on the Chinchilla runs in `data_dir` twice, on all
/// cores and on one, and checks that both give the same parameters.
pub fn approach3_bench(data_dir: &Path) -> Result<Approach3Bench, StudyError> {
    check_dir(data_dir)?;
    let points = super::chinchilla::load(data_dir, &EpochChinchillaOptions::default())?;
    let all = ChinchillaConfig::default();
    let one = ChinchillaConfig {
        threads: 1,
        ..ChinchillaConfig::default()
    };
    let t0 = Instant::now();
    let fit = fit_chinchilla(&points, &all).step("Approach 3 on all cores")?;
    let seconds_all_cores = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let fit1 = fit_chinchilla(&points, &one).step("Approach 3 on one core")?;
    let seconds_one_core = t1.elapsed().as_secs_f64();
    if fit.theta != fit1.theta {
        return Err(StudyError::Inconsistent(format!(
            "the thread count changed the Approach-3 result: {:?} on all cores, {:?} on one",
            fit.theta, fit1.theta
        )));
    }
    Ok(Approach3Bench {
        points: points.len(),
        starts: fit.starts,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        seconds_all_cores,
        seconds_one_core,
        law: fit.law,
        objective: fit.objective,
    })
}
