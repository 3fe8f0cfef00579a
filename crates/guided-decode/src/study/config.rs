//! The study's help configurations: who writes which tokens.

use evals::harness::Task;

use crate::error::{GuidedError, Result};

/// One help configuration of the study.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HelpConfig {
    /// The small model alone.
    Small,
    /// The oracle alone (its own tokenizer, its own budget of the same size).
    Oracle,
    /// The seed's random help: `calls` (c) calls of `tokens` (k) oracle tokens at positions
    /// drawn from the first `L` (the study's horizon).
    Random {
        /// c.
        calls: usize,
        /// k.
        tokens: usize,
    },
    /// Call for `tokens` oracle tokens when the small model's entropy exceeds `tau` nats.
    Entropy {
        /// τ (nats).
        tau: f32,
        /// k.
        tokens: usize,
    },
    /// Call for `tokens` oracle tokens when the small model's max probability is below `tau`
    /// (BiLD's fallback rule).
    MaxProb {
        /// τ.
        tau: f32,
        /// k.
        tokens: usize,
    },
    /// BiLD fallback and rollback (shared vocabulary only).
    Bild {
        /// Fallback threshold on the small model's max probability.
        fallback: f32,
        /// Rollback threshold on the oracle's cross-entropy (nats).
        rollback: f32,
    },
    /// Greedy speculative decoding with `gamma` drafts per round (shared vocabulary only).
    Speculative {
        /// γ.
        gamma: usize,
    },
}

/// Trims a float for names: `2.5` → `2.5`, `2.0` → `2`.
fn num(x: f32) -> String {
    let s = format!("{x}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

impl HelpConfig {
    /// File-safe name: `small`, `oracle`, `random_c10_k5`, `entropy_t2.5_k1`,
    /// `maxprob_t0.6_k1`, `bild_f0.6_r5`, `spec_g4`.
    pub fn name(&self) -> String {
        match *self {
            Self::Small => "small".into(),
            Self::Oracle => "oracle".into(),
            Self::Random { calls, tokens } => format!("random_c{calls}_k{tokens}"),
            Self::Entropy { tau, tokens } => format!("entropy_t{}_k{tokens}", num(tau)),
            Self::MaxProb { tau, tokens } => format!("maxprob_t{}_k{tokens}", num(tau)),
            Self::Bild { fallback, rollback } => {
                format!("bild_f{}_r{}", num(fallback), num(rollback))
            }
            Self::Speculative { gamma } => format!("spec_g{gamma}"),
        }
    }

    /// The family (`small`, `oracle`, `random`, `entropy`, `maxprob`, `bild`, `speculative`):
    /// one curve per family in the figures.
    pub fn family(&self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Oracle => "oracle",
            Self::Random { .. } => "random",
            Self::Entropy { .. } => "entropy",
            Self::MaxProb { .. } => "maxprob",
            Self::Bild { .. } => "bild",
            Self::Speculative { .. } => "speculative",
        }
    }

    /// Whether the configuration needs the small model and the oracle to share a vocabulary.
    pub fn needs_shared_vocabulary(&self) -> bool {
        matches!(self, Self::Bild { .. } | Self::Speculative { .. })
    }

    /// Parses the command-line form: `small`, `oracle`, `random:CxK`, `entropy:TAUxK`,
    /// `maxprob:TAUxK`, `bild:FALLBACK/ROLLBACK`, `spec:GAMMA`.
    ///
    /// # Errors
    /// Anything else, naming the configuration.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| GuidedError::InvalidOption {
            name: "config",
            reason: format!(
                "`{s}`: {why} (forms: small, oracle, random:CxK, entropy:TAUxK, maxprob:TAUxK, bild:F/R, spec:G)"
            ),
        };
        let (head, tail) = s.split_once(':').unwrap_or((s, ""));
        let pair = |sep: char| -> Result<(&str, &str)> {
            tail.split_once(sep)
                .ok_or_else(|| bad("missing parameters"))
        };
        let int = |v: &str| v.trim().parse::<usize>().map_err(|_| bad("not an integer"));
        let float = |v: &str| {
            v.trim()
                .parse::<f32>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad("not a finite number"))
        };
        let positive = |v: usize| {
            if v == 0 {
                Err(bad("must be at least 1"))
            } else {
                Ok(v)
            }
        };
        Ok(match head {
            "small" if tail.is_empty() => Self::Small,
            "oracle" if tail.is_empty() => Self::Oracle,
            "random" => {
                let (c, k) = pair('x')?;
                Self::Random {
                    calls: positive(int(c)?)?,
                    tokens: positive(int(k)?)?,
                }
            }
            "entropy" | "maxprob" => {
                let (t, k) = pair('x')?;
                let (tau, tokens) = (float(t)?, positive(int(k)?)?);
                if head == "entropy" {
                    Self::Entropy { tau, tokens }
                } else {
                    Self::MaxProb { tau, tokens }
                }
            }
            "bild" => {
                let (f, r) = pair('/')?;
                Self::Bild {
                    fallback: float(f)?,
                    rollback: float(r)?,
                }
            }
            "spec" => Self::Speculative {
                gamma: positive(int(tail)?)?,
            },
            _ => return Err(bad("unknown configuration")),
        })
    }
}

/// The default grid of a task.
///
/// * GSM8K and MATH-500 (long answers): the seed's random grid `k ∈ {2, 5, 10} × c ∈ {10, 20,
///   50, 100}`, entropy triggers `τ ∈ {1, 1.5, 2, 2.5, 3, 4}` nats and max-probability triggers
///   `τ ∈ {0.2, 0.3, 0.4, 0.5, 0.6, 0.8}`, each for `k = 4` tokens per call;
/// * `lambada_gen` (one word, ≤ 8 tokens): the cells that matter for short answers — `c ∈ {1,
///   2, 4} × k ∈ {1, 2, 4}` — and the same triggers with `k = 1`;
///
/// plus the small model and the oracle alone; BiLD (`fallback 0.6`, `rollback ∈ {2, 5}`) and
/// speculative decoding (`γ ∈ {2, 4}`) when `shared_vocabulary`.
pub fn default_grid(task: &Task, shared_vocabulary: bool) -> Vec<HelpConfig> {
    let short = matches!(task, Task::LambadaGen);
    let mut grid = vec![HelpConfig::Small, HelpConfig::Oracle];
    let (cs, ks, trigger_k): (&[usize], &[usize], usize) = if short {
        (&[1, 2, 4], &[1, 2, 4], 1)
    } else {
        (&[10, 20, 50, 100], &[2, 5, 10], 4)
    };
    for &tokens in ks {
        for &calls in cs {
            grid.push(HelpConfig::Random { calls, tokens });
        }
    }
    for tau in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0] {
        grid.push(HelpConfig::Entropy {
            tau,
            tokens: trigger_k,
        });
    }
    for tau in [0.2, 0.3, 0.4, 0.5, 0.6, 0.8] {
        grid.push(HelpConfig::MaxProb {
            tau,
            tokens: trigger_k,
        });
    }
    if shared_vocabulary {
        for rollback in [2.0, 5.0] {
            grid.push(HelpConfig::Bild {
                fallback: 0.6,
                rollback,
            });
        }
        for gamma in [2, 4] {
            grid.push(HelpConfig::Speculative { gamma });
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parsing_round_trip() {
        for (s, name) in [
            ("small", "small"),
            ("oracle", "oracle"),
            ("random:10x5", "random_c10_k5"),
            ("entropy:2.5x1", "entropy_t2.5_k1"),
            ("maxprob:0.6x4", "maxprob_t0.6_k4"),
            ("bild:0.6/5", "bild_f0.6_r5"),
            ("spec:4", "spec_g4"),
        ] {
            assert_eq!(HelpConfig::parse(s).unwrap().name(), name);
        }
        for bad in [
            "",
            "random",
            "random:10",
            "random:0x5",
            "entropy:nanx1",
            "spec:0",
            "beam:3",
            "small:1",
        ] {
            let e = HelpConfig::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }

    #[test]
    fn grids_cover_the_seed_table_and_short_answers() {
        let long = default_grid(&Task::Gsm8k, false);
        assert!(long.contains(&HelpConfig::Random {
            calls: 20,
            tokens: 5
        }));
        assert!(long.contains(&HelpConfig::Random {
            calls: 100,
            tokens: 10
        }));
        assert!(!long.iter().any(HelpConfig::needs_shared_vocabulary));
        let short = default_grid(&Task::LambadaGen, true);
        assert!(short.iter().all(|c| match c {
            HelpConfig::Random { calls, .. } => *calls <= 8,
            _ => true,
        }));
        assert!(short.contains(&HelpConfig::Speculative { gamma: 4 }));
    }
}
