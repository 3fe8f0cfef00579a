//! Guided generation and speculative decoding on tiny random models (no files needed):
//! * greedy speculative decoding equals the target's own greedy output on 20 prompts, for
//!   γ = 1, 3, 5;
//! * stochastic speculative decoding follows the target's distribution: a chi-square test on
//!   the first two generated tokens' marginals against the exact target probabilities;
//! * random `c × k` help makes exactly `c` calls, reproducibly per seed and item;
//! * a policy that calls the oracle at step 0 for the whole budget reproduces the oracle's own
//!   greedy output (same tokenizer); never calling reproduces the small model's;
//! * BiLD: always falling back gives the large model's greedy output, never falling back the
//!   small model's; in between, the completion is the small model's kept tokens plus one large-model token per call;
//! * an oracle that answers with nothing cannot stall a generation, and a policy asking for
//!   0 tokens is refused.

use guided_decode::testing::tiny_model;
use guided_decode::{
    BildOptions, GuidedOptions, ModelOracle, SpeculativeOptions, bild_generate, guided_generate,
    speculative_generate,
};
use lm::generate::sampling::distribution;
use lm::nn::tensor_io::read_f32;
use lm::{GenerateOptions, LanguageModel, LogitsAt, generate};
use routing_core::token::{NeverHelp, OracleOnly, RandomCalls};

const V: usize = 12;

fn prompts() -> Vec<Vec<u32>> {
    (0..20u32)
        .map(|i| {
            (0..(2 + i % 5))
                .map(|j| (i * 7 + j * 3) % V as u32)
                .collect()
        })
        .collect()
}

fn words(ids: &[u32]) -> String {
    ids.iter()
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn greedy(model: &impl LanguageModel, prompt: &[u32], n: usize) -> Vec<u32> {
    generate(
        model,
        prompt,
        &GenerateOptions {
            max_new_tokens: n,
            ..Default::default()
        },
    )
    .unwrap()
    .tokens
}

#[test]
fn greedy_speculative_decoding_equals_target_greedy() {
    let (draft, target) = (tiny_model(V, 1), tiny_model(V, 2));
    let mut accepted = 0;
    let mut drafted = 0;
    for gamma in [1, 3, 5] {
        for p in prompts() {
            let want = greedy(&target, &p, 24);
            let got = speculative_generate(
                &draft,
                &target,
                &p,
                &SpeculativeOptions {
                    gamma,
                    max_new_tokens: 24,
                    temperature: 0.0,
                    seed: 0,
                    until: Vec::new(),
                },
            )
            .unwrap();
            assert_eq!(got.tokens, want, "γ = {gamma}, prompt {p:?}");
            assert!(got.target_passes <= 24);
            accepted += got.accepted;
            drafted += got.drafted;
        }
    }
    // The draft is a different random model: some drafts are rejected, some accepted.
    assert!(accepted > 0 && accepted < drafted, "{accepted}/{drafted}");
    // A draft identical to the target accepts everything: γ + 1 tokens per pass.
    let same = speculative_generate(
        &target,
        &target,
        &prompts()[0],
        &SpeculativeOptions {
            gamma: 3,
            max_new_tokens: 24,
            temperature: 0.0,
            seed: 0,
            until: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(same.accepted, same.drafted);
    assert!((same.tokens_per_pass() - 4.0).abs() < 1e-9);
}

/// The marginal distributions of the first and second generated token under the target at
/// temperature `t`, exactly (the second summed over the first).
fn exact_marginals(target: &impl LanguageModel, prompt: &[u32], t: f32) -> (Vec<f64>, Vec<f64>) {
    let soft = |logits: &[f32]| -> Vec<f64> {
        let scaled: Vec<f32> = logits.iter().map(|x| x / t).collect();
        let (lp, ..) = distribution(&scaled);
        lp.iter().map(|&x| f64::from(x).exp()).collect()
    };
    let next = |seq: &[u32]| -> Vec<f64> {
        let mut c = target.new_cache(1);
        soft(
            &read_f32(
                target
                    .forward(&[seq.to_vec()], &mut c, LogitsAt::Last)
                    .unwrap(),
            )
            .unwrap(),
        )
    };
    let first = next(prompt);
    let mut second = vec![0.0; V];
    for (x, &px) in first.iter().enumerate() {
        let mut seq = prompt.to_vec();
        seq.push(x as u32);
        for (y, py) in next(&seq).iter().enumerate() {
            second[y] += px * py;
        }
    }
    (first, second)
}

/// Pearson's chi-square statistic of `counts` against probabilities `p` (cells with expected
/// count below 5 pooled into one).
fn chi_square(counts: &[usize], p: &[f64]) -> (f64, usize) {
    let n: usize = counts.iter().sum();
    let (mut stat, mut cells) = (0.0, 0);
    let (mut pool_o, mut pool_e) = (0.0, 0.0);
    for (&o, &q) in counts.iter().zip(p) {
        let e = q * n as f64;
        if e < 5.0 {
            pool_o += o as f64;
            pool_e += e;
        } else {
            stat += (o as f64 - e).powi(2) / e;
            cells += 1;
        }
    }
    if pool_e > 0.0 {
        stat += (pool_o - pool_e).powi(2) / pool_e.max(1e-12);
        cells += 1;
    }
    (stat, cells - 1)
}

#[test]
fn stochastic_speculative_decoding_follows_the_target_distribution() {
    // Temperature 1.5 flattens the tiny models so that every token has real mass; the draft
    // is a different model, so the rejection rule and the residual draw are both exercised.
    let (draft, target) = (tiny_model(V, 1), tiny_model(V, 2));
    let prompt = vec![3u32, 7, 1];
    let t = 1.5;
    let (p1, p2) = exact_marginals(&target, &prompt, t);
    let n = 3000;
    let (mut c1, mut c2) = (vec![0usize; V], vec![0usize; V]);
    let mut rejected = 0;
    for seed in 0..n {
        let out = speculative_generate(
            &draft,
            &target,
            &prompt,
            &SpeculativeOptions {
                gamma: 2,
                max_new_tokens: 2,
                temperature: t,
                seed,
                until: Vec::new(),
            },
        )
        .unwrap();
        c1[out.tokens[0] as usize] += 1;
        c2[out.tokens[1] as usize] += 1;
        rejected += out.drafted - out.accepted;
    }
    assert!(
        rejected > 100,
        "the draft must be rejected sometimes ({rejected})"
    );
    // 99.9% quantiles of chi-square: df 11 → 31.26 (fewer cells after pooling → smaller).
    // With n = 3000, a draft-only sampler (no correction) is rejected by this test: see the
    // companion check below, which measures the same statistic against the *draft's* marginal.
    for (counts, p, what) in [(&c1, &p1, "first"), (&c2, &p2, "second")] {
        let (stat, df) = chi_square(counts, p);
        eprintln!("{what} token: chi-square {stat:.2} on {df} df");
        assert!(stat < 31.26, "{what} token: {stat} on {df} df");
    }
    // Power: the same counts against the draft's own first-token distribution fail clearly.
    let (q1, _) = exact_marginals(&draft, &prompt, t);
    let (stat, df) = chi_square(&c1, &q1);
    eprintln!("against the draft's distribution: chi-square {stat:.2} on {df} df");
    assert!(stat > 100.0, "{stat}");
}

#[test]
fn random_help_makes_exactly_c_calls_reproducibly() {
    let (small, big) = (tiny_model(V, 1), tiny_model(V, 2));
    let mut oracle = ModelOracle::same_tokenizer(&big);
    let mut policy = RandomCalls::new(4, 2, 10, 99).unwrap();
    let opts = |item| GuidedOptions {
        max_new_tokens: 30,
        item,
        ..Default::default()
    };
    let a = guided_generate(&small, &mut oracle, &mut policy, "w3 w7 w1", &opts(5)).unwrap();
    assert_eq!(a.calls.len(), 4);
    assert_eq!(a.accounting.oracle_calls, 4);
    assert_eq!(a.accounting.oracle_generated, 8);
    assert_eq!(a.tokens.len(), 30);
    assert_eq!(a.accounting.small_generated, 22);
    assert!((a.accounting.oracle_share(a.tokens.len()) - 8.0 / 30.0).abs() < 1e-12);
    // Each token counted once: the small model read the prompt and the oracle's 8 tokens and
    // wrote 22, so its FLOPs cover the 30 + prompt tokens of its sequence.
    let n_prompt = small.encode_prompt("w3 w7 w1").unwrap().len();
    assert_eq!(a.accounting.small_read, n_prompt + 8);
    let p = small.active_parameters().expect("a known size") as f64;
    assert_eq!(
        a.accounting.small_flops,
        Some(2.0 * p * (n_prompt + 30) as f64)
    );
    assert!(a.calls.iter().all(|c| c.position < 10 + 2 * 4));
    // A fresh oracle (a kept one would read less: it keeps its cache across items).
    let mut fresh = ModelOracle::same_tokenizer(&big);
    let b = guided_generate(&small, &mut fresh, &mut policy, "w3 w7 w1", &opts(5)).unwrap();
    assert_eq!(strip(a.clone()), strip(b));
    let c = guided_generate(&small, &mut oracle, &mut policy, "w3 w7 w1", &opts(6)).unwrap();
    let pos = |g: &guided_decode::GuidedGeneration| {
        g.calls.iter().map(|c| c.position).collect::<Vec<_>>()
    };
    assert_ne!(pos(&a), pos(&c));
}

/// Timing fields differ between runs; everything else must be identical.
fn strip(mut g: guided_decode::GuidedGeneration) -> guided_decode::GuidedGeneration {
    g.accounting.small_s = 0.0;
    g.accounting.oracle_s = 0.0;
    g.accounting.policy_s = 0.0;
    g.accounting.small_step_s = 0.0;
    g
}

#[test]
fn decoders_kept_across_items_change_nothing() {
    let (small, big) = (tiny_model(V, 1), tiny_model(V, 2));
    let (mut sd, mut bd) = (lm::Decoder::empty(&small), lm::Decoder::empty(&big));
    let (mut sd2, mut bd2) = (lm::Decoder::empty(&small), lm::Decoder::empty(&big));
    let mut oracle = ModelOracle::same_tokenizer(&big);
    let mut fresh_oracle = ModelOracle::same_tokenizer(&big);
    let mut policy = RandomCalls::new(3, 2, 12, 4).unwrap();
    // Prompts that share prefixes with their predecessors, in both orders.
    let mut ps = prompts();
    ps.extend(prompts().into_iter().rev());
    for (i, p) in ps.iter().enumerate() {
        let spec = SpeculativeOptions {
            gamma: 3,
            max_new_tokens: 16,
            temperature: 0.0,
            seed: 0,
            until: Vec::new(),
        };
        let kept = guided_decode::speculative_with(&mut sd, &mut bd, p, &spec).unwrap();
        assert_eq!(
            kept.tokens,
            speculative_generate(&small, &big, p, &spec).unwrap().tokens
        );
        let bild = BildOptions {
            fallback: 0.5,
            rollback: 1.0,
            max_new_tokens: 16,
            until: Vec::new(),
        };
        let kept = guided_decode::bild_with(&mut sd2, &mut bd2, p, &bild).unwrap();
        let fresh = bild_generate(&small, &big, p, &bild).unwrap();
        assert_eq!((kept.tokens, kept.calls), (fresh.tokens, fresh.calls));
        let opts = GuidedOptions {
            max_new_tokens: 16,
            item: i as u64,
            ..Default::default()
        };
        let kept = guided_decode::guided_with(&mut sd, &mut oracle, &mut policy, &words(p), &opts)
            .unwrap();
        let fresh =
            guided_generate(&small, &mut fresh_oracle, &mut policy, &words(p), &opts).unwrap();
        assert_eq!(kept.tokens, fresh.tokens);
        assert_eq!(kept.calls, fresh.calls);
        // The kept decoder read only what the previous item did not share.
        assert!(kept.accounting.small_read <= fresh.accounting.small_read);
    }
}

#[test]
fn stop_strings_end_generation_and_cut_the_text() {
    let (small, big) = (tiny_model(V, 1), tiny_model(V, 2));
    let mut oracle = ModelOracle::same_tokenizer(&big);
    let free = guided_generate(
        &small,
        &mut oracle,
        &mut NeverHelp,
        "w3 w7 w1",
        &GuidedOptions {
            max_new_tokens: 12,
            ..Default::default()
        },
    )
    .unwrap();
    // Stop at the fourth generated word: the text ends before it, generation right after it.
    let stop_word = format!("w{}", free.tokens[3]);
    let first = free
        .tokens
        .iter()
        .position(|&t| format!("w{t}") == stop_word)
        .unwrap();
    let g = guided_generate(
        &small,
        &mut oracle,
        &mut NeverHelp,
        "w3 w7 w1",
        &GuidedOptions {
            max_new_tokens: 12,
            until: vec![stop_word.clone()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(g.stop, guided_decode::GuidedStop::StopString);
    assert_eq!(g.tokens, free.tokens[..=first]);
    assert!(!g.text.contains(&stop_word), "{:?}", g.text);
    assert!(
        free.text.starts_with(g.text.trim_end()),
        "{:?} vs {:?}",
        g.text,
        free.text
    );
    assert_eq!(g.steps.len(), first + 1);
}

#[test]
fn oracle_at_step_zero_reproduces_the_oracle_and_never_the_small_model() {
    let (small, big) = (tiny_model(V, 1), tiny_model(V, 2));
    for p in prompts() {
        let text = words(&p);
        let opts = GuidedOptions {
            max_new_tokens: 20,
            ..Default::default()
        };
        let mut oracle = ModelOracle::same_tokenizer(&big);
        let g = guided_generate(
            &small,
            &mut oracle,
            &mut OracleOnly::new(20).unwrap(),
            &text,
            &opts,
        )
        .unwrap();
        assert_eq!(g.tokens, greedy(&big, &p, 20), "prompt {text}");
        assert_eq!(g.accounting.small_generated, 0);
        let s = guided_generate(&small, &mut oracle, &mut NeverHelp, &text, &opts).unwrap();
        assert_eq!(s.tokens, greedy(&small, &p, 20));
        assert_eq!(s.accounting.oracle_calls, 0);
    }
}

#[test]
fn bild_spans_small_only_to_large_only() {
    let (small, large) = (tiny_model(V, 1), tiny_model(V, 2));
    let run = |p: &[u32], fallback: f32, rollback: f32| {
        bild_generate(
            &small,
            &large,
            p,
            &BildOptions {
                fallback,
                rollback,
                max_new_tokens: 24,
                until: Vec::new(),
            },
        )
        .unwrap()
    };
    let (mut calls, mut rollbacks) = (0, 0);
    for p in prompts() {
        let all_large = run(&p, 1.1, 5.0);
        assert_eq!(all_large.tokens, greedy(&large, &p, 24));
        assert_eq!(all_large.small_generated, 0);
        let all_small = run(&p, 0.0, 5.0);
        assert_eq!(all_small.tokens, greedy(&small, &p, 24));
        assert_eq!(all_small.calls, 0);
        // In between: every call either rolls back or writes one token; the completion is the
        // small model's kept tokens plus the large model's.
        let mid = run(&p, 0.5, 1.0);
        assert_eq!(mid.tokens.len(), 24);
        assert_eq!(
            mid.small_generated - mid.discarded + mid.large_written,
            mid.tokens.len()
        );
        assert_eq!(mid.large_written, mid.calls);
        calls += mid.calls;
        rollbacks += mid.rollbacks;
    }
    assert!(
        calls > 0 && rollbacks > 0 && rollbacks < calls,
        "{rollbacks}/{calls}"
    );
}

/// An oracle that answers every call with nothing (an empty completion that is not a stop,
/// as a server may return).
struct Mute;

impl guided_decode::Oracle for Mute {
    fn name(&self) -> &str {
        "mute"
    }
    fn handoff(&self) -> guided_decode::Handoff {
        guided_decode::Handoff::Text
    }
    fn continue_ids(
        &mut self,
        _: &[u32],
        k: usize,
    ) -> guided_decode::Result<guided_decode::OracleReply> {
        self.continue_text("", "", k)
    }
    fn continue_text(
        &mut self,
        _: &str,
        _: &str,
        _: usize,
    ) -> guided_decode::Result<guided_decode::OracleReply> {
        Ok(guided_decode::OracleReply {
            tokens: Vec::new(),
            generated: 0,
            text: String::new(),
            read_tokens: 0,
            stopped: false,
            wall: std::time::Duration::ZERO,
        })
    }
    fn reset(&mut self) {}
    fn active_parameters(&self) -> Option<u64> {
        None
    }
}

/// A policy that asks for `k` tokens before every step.
struct Always(usize);

impl routing_core::token::HelpPolicy for Always {
    fn name(&self) -> String {
        format!("always {}", self.0)
    }
    fn reset(&mut self, _: u64) {}
    fn decide(
        &mut self,
        _: &routing_core::token::TokenSignal,
    ) -> routing_core::token::HelpDecision {
        routing_core::token::HelpDecision::AskOracle { tokens: self.0 }
    }
}

#[test]
fn an_oracle_that_adds_nothing_cannot_stall_generation() {
    let small = tiny_model(V, 1);
    let opts = GuidedOptions {
        max_new_tokens: 12,
        ..Default::default()
    };
    // Each empty hand-off is followed by one small-model step: the budget is reached.
    let g = guided_generate(&small, &mut Mute, &mut Always(3), "w3 w7 w1", &opts).unwrap();
    assert_eq!(g.accounting.small_generated, 12);
    assert_eq!(g.accounting.oracle_calls, 12);
    assert_eq!(g.tokens.len(), 12);
    // A policy asking for 0 tokens is refused, naming itself.
    let e = guided_generate(&small, &mut Mute, &mut Always(0), "w3 w7 w1", &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("always 0"), "{e}");
}
