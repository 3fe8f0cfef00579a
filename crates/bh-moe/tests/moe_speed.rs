//! Timing of the MoE block against the number of selected experts (run with
//! `cargo test --release -p bh-moe --test moe_speed -- --ignored --nocapture`): a SmolLM2-shaped
//! layer stack (hidden 576, 1,536 neurons split into 64 experts of 24), 256 tokens, top-k at
//! k = 1 … 64 with weight 1, and the dense model; then BH (max_k 64, weight 1, KDE nulls fitted
//! on the same model's router logits) at α = 0.3 … 0.9. Prints ms per forward, the MoE blocks'
//! time and the selection's; asserts that time grows with k and that BH's selection stays
//! within 10% of the MoE blocks' time.

use std::time::Instant;

use bh_moe::routed::RoutingRecorder;
use bh_moe::testbed::{moe_spec, moe_weights};
use bh_moe::{BhConfig, BhSelector, GaussianKde, UnitWeights};
use lm::nn::moe::ExpertRouting;
use lm::nn::tensor_io::read_f32;
use lm::{LogitsAt, Transformer};
use routing_core::expert::CombineWeights;
use routing_core::expert::TopK;

#[test]
#[ignore = "timing; run explicitly"]
fn moe_block_time_grows_with_k() {
    let cfg = lm::LlamaConfig {
        vocab_size: 1024,
        hidden_size: 576,
        intermediate_size: 1536,
        num_hidden_layers: 4,
        num_attention_heads: 9,
        num_key_value_heads: 3,
        head_dim: None,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 2048,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_id: Vec::new(),
    };
    let spec = cfg.spec().unwrap();
    let dense_w = lm::HostWeights::random(&spec, 1, 0.05, 0.1);
    let device = burn::tensor::Device::flex();
    let partition: Vec<Vec<Vec<usize>>> = (0..4)
        .map(|_| (0..64).map(|e| (e * 24..(e + 1) * 24).collect()).collect())
        .collect();
    let routers: Vec<Vec<f32>> = (0..4)
        .map(|l| {
            (0..64 * 576)
                .map(|i| ((i * 7 + l) % 13) as f32 * 0.01 - 0.06)
                .collect()
        })
        .collect();
    let moe_w = moe_weights(&spec, &dense_w, &partition, Some(&routers)).unwrap();
    let moe = Transformer::new(moe_spec(&spec, 64).unwrap(), &moe_w, &device).unwrap();
    let dense = Transformer::new(spec.clone(), &dense_w, &device).unwrap();
    let ids = vec![(0..256u32).map(|i| (i * 31) % 1024).collect::<Vec<_>>()];
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        read_f32(
            dense
                .forward(&ids, &mut dense.new_cache(1), LogitsAt::Last)
                .unwrap(),
        )
        .unwrap();
    }
    let dense_ms = 1000.0 * t.elapsed().as_secs_f64() / reps as f64;
    eprintln!("dense: {dense_ms:.1} ms per 256-token forward (4 layers)");
    // ms per forward of the MoE stack under `sel`, every layer recorded by `rec`.
    let timed = |sel: &mut dyn routing_core::expert::ExpertSelector, rec: &mut RoutingRecorder| {
        let t = Instant::now();
        for _ in 0..reps {
            let mut routing = ExpertRouting::observed(sel, rec);
            read_f32(
                moe.forward_routed(&ids, &mut moe.new_cache(1), LogitsAt::Last, &mut routing)
                    .unwrap(),
            )
            .unwrap();
        }
        1000.0 * t.elapsed().as_secs_f64() / reps as f64
    };
    eprintln!("| k | ms / forward | MoE blocks ms | selection ms |");
    let mut prev = 0.0;
    for k in [1usize, 2, 4, 8, 16, 32, 64] {
        let mut sel = UnitWeights(TopK::new(k, false).unwrap());
        let mut rec = RoutingRecorder::new(4, 0);
        rec.keep_rows = false;
        let ms = timed(&mut sel, &mut rec);
        eprintln!(
            "| {k} | {ms:.1} | {:.1} | {:.2} |",
            1000.0 * rec.block_seconds / reps as f64,
            1000.0 * rec.select_seconds / reps as f64
        );
        if k >= 8 {
            assert!(ms > prev * 0.8, "time should grow with k");
        }
        prev = ms;
    }

    // BH: nulls from this model's own router logits (a top-8 calibration forward).
    let mut top8 = UnitWeights(TopK::new(8, false).unwrap());
    let mut cal = RoutingRecorder::new(4, 256);
    let mut routing = ExpertRouting::observed(&mut top8, &mut cal);
    read_f32(
        moe.forward_routed(&ids, &mut moe.new_cache(1), LogitsAt::Last, &mut routing)
            .unwrap(),
    )
    .unwrap();
    let mut pooled = vec![Vec::new(); 4];
    for row in &cal.rows {
        if let Some(z) = &row.logits {
            pooled[usize::from(row.layer)].extend(z.iter().map(|&x| f64::from(x)));
        }
    }
    let nulls: Vec<_> = pooled
        .iter()
        .map(|p| {
            GaussianKde::fit(p, bh_moe::Bandwidth::Scott)
                .unwrap()
                .tabulate(64)
                .unwrap()
        })
        .collect();
    eprintln!("| BH α | mean k | ms / forward | MoE blocks ms | selection ms | selection share |");
    for alpha in [0.3, 0.4, 0.5, 0.6, 0.9] {
        let mut sel = BhSelector::new(nulls.clone(), BhConfig::new(alpha, 1, 64).unwrap())
            .unwrap()
            .with_weights(CombineWeights::Unit);
        let mut rec = RoutingRecorder::new(4, 0);
        let ms = timed(&mut sel, &mut rec);
        let selected: usize = rec.rows.iter().map(|r| r.experts.len()).sum();
        let share = rec.select_seconds / rec.block_seconds;
        eprintln!(
            "| {alpha} | {:.1} | {ms:.1} | {:.1} | {:.2} | {:.1}% |",
            selected as f64 / rec.rows.len() as f64,
            1000.0 * rec.block_seconds / reps as f64,
            1000.0 * rec.select_seconds / reps as f64,
            100.0 * share
        );
        assert!(
            share <= 0.10,
            "BH selection takes {:.1}% of the MoE blocks",
            100.0 * share
        );
    }
}
