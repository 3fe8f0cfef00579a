//! Token-level routing: when a small model generating text should hand the next tokens to an
//! oracle (a larger model), and for how many.
//!
//! The second routing level beside the query router ([`crate::PairRouter`]): before each
//! small-model step the generator shows a [`HelpPolicy`] the small model's next-token
//! distribution ([`TokenSignal`]: position, entropy, max probability); the policy answers
//! [`HelpDecision::Continue`] (the small model samples) or [`HelpDecision::AskOracle`] (the oracle
//! writes the next `tokens` tokens, which the small model then reads). No tensors: the signal is a
//! few numbers, so the same policies drive any engine.
//!
//! | policy | calls the oracle |
//! |---|---|
//! | [`NeverHelp`] | never (the small model alone) |
//! | [`OracleOnly`] | at step 0 for the whole budget (the oracle alone, through the same loop) |
//! | [`RandomCalls`] | `c` times for `k` tokens, at positions drawn without replacement from the first `L` (seeded) — the seed study's random `c × k` help |
//! | [`EntropyTrigger`] | when the distribution's entropy `H > τ` (FS-GEN: the tokens that need help sit at high uncertainty) |
//! | [`MaxProbTrigger`] | when the max probability `p_max < τ` (BiLD's fallback rule, τ ≈ 0.6) |
//!
//! ```
//! use routing_core::token::{HelpDecision, HelpPolicy, RandomCalls, TokenSignal};
//!
//! // Three calls of 2 tokens at positions drawn from the first 10.
//! let mut policy = RandomCalls::new(3, 2, 10, 7)?;
//! policy.reset(0);
//! let mut calls = 0;
//! let mut position = 0;
//! while position < 40 {
//!     let signal = TokenSignal { position, entropy: 1.0, max_prob: 0.5 };
//!     match policy.decide(&signal) {
//!         HelpDecision::AskOracle { tokens } => { calls += 1; position += tokens; }
//!         HelpDecision::Continue => position += 1,
//!     }
//! }
//! assert_eq!(calls, 3);
//! # Ok::<(), routing_core::RoutingError>(())
//! ```

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, RoutingError};

/// What the small model shows the policy before one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenSignal {
    /// Generated tokens so far (0 before the first one), whoever wrote them.
    pub position: usize,
    /// Entropy of the small model's next-token distribution, nats.
    pub entropy: f32,
    /// Largest probability of that distribution.
    pub max_prob: f32,
}

/// A policy's answer before one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpDecision {
    /// The small model writes the next token.
    Continue,
    /// The oracle writes up to `tokens` tokens.
    AskOracle {
        /// How many tokens the oracle writes (≥ 1).
        tokens: usize,
    },
}

/// Decides, step by step, when a small model asks an oracle for help.
pub trait HelpPolicy {
    /// A short name for reports (`"random c=10 k=5"`).
    fn name(&self) -> String;

    /// Prepares for a new item; `item` seeds per-item randomness so that every item of a run
    /// gets its own, reproducible draw.
    fn reset(&mut self, item: u64);

    /// The decision before the step at `signal.position`.
    fn decide(&mut self, signal: &TokenSignal) -> HelpDecision;
}

fn positive(name: &str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(RoutingError::InvalidParameter {
            name: name.into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// The small model alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverHelp;

impl HelpPolicy for NeverHelp {
    fn name(&self) -> String {
        "small only".into()
    }
    fn reset(&mut self, _item: u64) {}
    fn decide(&mut self, _signal: &TokenSignal) -> HelpDecision {
        HelpDecision::Continue
    }
}

/// The oracle alone: one call at step 0 for the whole token budget.
#[derive(Debug, Clone, Copy)]
pub struct OracleOnly {
    budget: usize,
}

impl OracleOnly {
    /// A policy handing all `budget` tokens to the oracle.
    ///
    /// # Errors
    /// A zero budget.
    pub fn new(budget: usize) -> Result<Self> {
        positive("budget", budget)?;
        Ok(Self { budget })
    }
}

impl HelpPolicy for OracleOnly {
    fn name(&self) -> String {
        "oracle only".into()
    }
    fn reset(&mut self, _item: u64) {}
    fn decide(&mut self, signal: &TokenSignal) -> HelpDecision {
        if signal.position == 0 {
            HelpDecision::AskOracle {
                tokens: self.budget,
            }
        } else {
            HelpDecision::Continue
        }
    }
}

/// The seed study's random help: `c` calls of `k` tokens at positions drawn uniformly without
/// replacement from the first `L` generated positions, a fresh draw per item
/// (`seed` mixed with the item index).
///
/// A drawn position inside an earlier call's span is served at the first small-model step
/// after the span, so exactly `c` calls are made unless generation ends first (EOS, the token
/// budget); calls left when it ends are not made (the generator reports them). Requires
/// `c ≤ L`.
#[derive(Debug, Clone)]
pub struct RandomCalls {
    calls: usize,
    tokens: usize,
    horizon: usize,
    seed: u64,
    pending: Vec<usize>,
}

impl RandomCalls {
    /// `calls` (c) calls of `tokens` (k) tokens within the first `horizon` (L) positions.
    ///
    /// # Errors
    /// `k` or `L` zero, or `c > L`.
    pub fn new(calls: usize, tokens: usize, horizon: usize, seed: u64) -> Result<Self> {
        positive("k", tokens)?;
        positive("L", horizon)?;
        if calls > horizon {
            return Err(RoutingError::InvalidParameter {
                name: "c".into(),
                reason: format!("{calls} calls do not fit in the first {horizon} positions"),
            });
        }
        Ok(Self {
            calls,
            tokens,
            horizon,
            seed,
            pending: Vec::new(),
        })
    }

    /// Positions still to be served, ascending.
    pub fn pending(&self) -> &[usize] {
        &self.pending
    }
}

impl HelpPolicy for RandomCalls {
    fn name(&self) -> String {
        format!("random c={} k={}", self.calls, self.tokens)
    }

    fn reset(&mut self, item: u64) {
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ item.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut p = sample(&mut rng, self.horizon, self.calls).into_vec();
        p.sort_unstable();
        self.pending = p;
    }

    fn decide(&mut self, signal: &TokenSignal) -> HelpDecision {
        match self.pending.first() {
            Some(&p) if p <= signal.position => {
                self.pending.remove(0);
                HelpDecision::AskOracle {
                    tokens: self.tokens,
                }
            }
            _ => HelpDecision::Continue,
        }
    }
}

/// Shared state of the threshold triggers: `k` tokens per call, an optional call budget.
#[derive(Debug, Clone, Copy)]
struct Trigger {
    threshold: f32,
    tokens: usize,
    max_calls: Option<usize>,
    made: usize,
}

impl Trigger {
    fn new(threshold: f32, tokens: usize, max_calls: Option<usize>) -> Result<Self> {
        positive("k", tokens)?;
        if !threshold.is_finite() {
            return Err(RoutingError::InvalidParameter {
                name: "tau".into(),
                reason: format!("{threshold} is not finite"),
            });
        }
        Ok(Self {
            threshold,
            tokens,
            max_calls,
            made: 0,
        })
    }

    fn fire(&mut self, condition: bool) -> HelpDecision {
        if condition && self.max_calls.is_none_or(|m| self.made < m) {
            self.made += 1;
            HelpDecision::AskOracle {
                tokens: self.tokens,
            }
        } else {
            HelpDecision::Continue
        }
    }
}

/// Calls the oracle for `k` tokens when the small model's entropy exceeds `τ` nats (at most
/// `max_calls` times per item when given).
#[derive(Debug, Clone, Copy)]
pub struct EntropyTrigger(Trigger);

impl EntropyTrigger {
    /// `H > tau` → `k` oracle tokens.
    ///
    /// # Errors
    /// `k = 0` or a non-finite `tau`.
    pub fn new(tau: f32, k: usize, max_calls: Option<usize>) -> Result<Self> {
        Ok(Self(Trigger::new(tau, k, max_calls)?))
    }
}

impl HelpPolicy for EntropyTrigger {
    fn name(&self) -> String {
        format!("entropy > {} k={}", self.0.threshold, self.0.tokens)
    }
    fn reset(&mut self, _item: u64) {
        self.0.made = 0;
    }
    fn decide(&mut self, s: &TokenSignal) -> HelpDecision {
        self.0.fire(s.entropy > self.0.threshold)
    }
}

/// Calls the oracle for `k` tokens when the small model's max probability is below `τ`
/// (BiLD's fallback policy, Kim et al. 2023, with τ ≈ 0.6).
#[derive(Debug, Clone, Copy)]
pub struct MaxProbTrigger(Trigger);

impl MaxProbTrigger {
    /// `p_max < tau` → `k` oracle tokens.
    ///
    /// # Errors
    /// `k = 0` or a non-finite `tau`.
    pub fn new(tau: f32, k: usize, max_calls: Option<usize>) -> Result<Self> {
        Ok(Self(Trigger::new(tau, k, max_calls)?))
    }
}

impl HelpPolicy for MaxProbTrigger {
    fn name(&self) -> String {
        format!("max-prob < {} k={}", self.0.threshold, self.0.tokens)
    }
    fn reset(&mut self, _item: u64) {
        self.0.made = 0;
    }
    fn decide(&mut self, s: &TokenSignal) -> HelpDecision {
        self.0.fire(s.max_prob < self.0.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        policy: &mut dyn HelpPolicy,
        steps: usize,
        signal: impl Fn(usize) -> (f32, f32),
    ) -> Vec<usize> {
        let mut at = Vec::new();
        let mut position = 0;
        while position < steps {
            let (entropy, max_prob) = signal(position);
            match policy.decide(&TokenSignal {
                position,
                entropy,
                max_prob,
            }) {
                HelpDecision::AskOracle { tokens } => {
                    at.push(position);
                    position += tokens;
                }
                HelpDecision::Continue => position += 1,
            }
        }
        at
    }

    #[test]
    fn random_calls_are_exact_reproducible_and_differ_per_item() {
        let mut p = RandomCalls::new(10, 5, 50, 42).unwrap();
        p.reset(3);
        let a = run(&mut p, 200, |_| (0.0, 1.0));
        assert_eq!(a.len(), 10);
        p.reset(3);
        assert_eq!(run(&mut p, 200, |_| (0.0, 1.0)), a);
        p.reset(4);
        assert_ne!(run(&mut p, 200, |_| (0.0, 1.0)), a);
        // Every draw of every item stays within L = 50 and is distinct.
        for item in 0..100 {
            p.reset(item);
            let d = p.pending().to_vec();
            assert_eq!(d.len(), 10);
            assert!(d.windows(2).all(|w| w[0] < w[1]) && d.iter().all(|&x| x < 50));
        }
        // c = L: every one of the first L positions is drawn; calls queue up behind spans.
        let mut all = RandomCalls::new(4, 3, 4, 1).unwrap();
        all.reset(0);
        assert_eq!(run(&mut all, 100, |_| (0.0, 1.0)), vec![0, 3, 6, 9]);
        assert!(RandomCalls::new(5, 2, 4, 0).is_err());
        assert!(RandomCalls::new(1, 0, 4, 0).is_err());
    }

    #[test]
    fn triggers_fire_on_their_signal_within_the_budget() {
        let mut e = EntropyTrigger::new(2.0, 2, Some(2)).unwrap();
        e.reset(0);
        // High entropy at positions 3, 4 (covered by the first call's span), 7, 9.
        let hi = |p: usize| {
            if [3, 4, 7, 9].contains(&p) {
                (3.0, 0.2)
            } else {
                (0.5, 0.9)
            }
        };
        assert_eq!(run(&mut e, 20, hi), vec![3, 7]);
        e.reset(1);
        assert_eq!(run(&mut e, 20, hi).len(), 2);
        let mut m = MaxProbTrigger::new(0.6, 1, None).unwrap();
        m.reset(0);
        assert_eq!(run(&mut m, 20, hi), vec![3, 4, 7, 9]);
        assert!(EntropyTrigger::new(f32::NAN, 1, None).is_err());
    }

    #[test]
    fn oracle_only_calls_once_for_the_budget_and_never_helps_never() {
        let mut o = OracleOnly::new(32).unwrap();
        assert_eq!(run(&mut o, 32, |_| (0.0, 1.0)), vec![0]);
        assert!(run(&mut NeverHelp, 32, |_| (9.0, 0.0)).is_empty());
    }
}
