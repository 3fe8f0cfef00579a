//! The real-weights testbed: SmolLM2-135M-Instruct split into 64 experts of 24 neurons. With
//! all 64 experts (weight 1) it must equal the dense model; the artefact must survive a
//! save/load round trip; the routers must fit the experts' output norms better than chance.
//! Skips (or, under CI, fails) when the model or `shared/data` is missing.

use std::path::PathBuf;

use bh_moe::UnitWeights;
use bh_moe::testbed::{DenseBase, Testbed, TestbedOptions, wikitext_validation, windows};
use lm::nn::moe::ExpertRouting;
use lm::nn::tensor_io::read_f32;
use lm::{LogitsAt, Transformer};
use routing_core::expert::TopK;

fn inputs() -> Option<(PathBuf, PathBuf)> {
    let data = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .ancestors()
    .map(|a| a.join("shared").join("data"))
    .find(|p| p.is_dir());
    match (lm::locate::smollm2_gguf(), data) {
        (Ok(m), Some(d)) => Some((m, d)),
        (m, d) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but the model ({:?}) or shared/data ({d:?}) is missing",
                m.err()
            );
            eprintln!("skipping: SmolLM2 or shared/data missing");
            None
        }
    }
}

#[test]
fn smollm2_split_into_64_experts_equals_the_dense_model_with_all_experts() {
    let Some((model, data)) = inputs() else {
        return;
    };
    let base = DenseBase::from_gguf(&model).unwrap();
    assert_eq!(base.spec.intermediate_size, 1536);
    let text = wikitext_validation(&data).unwrap();
    let ids = base.encode_prefix(&text, 512).unwrap();
    assert_eq!(ids.len(), 512);
    // A small calibration (2 windows of 128) keeps the test fast; the artefact the
    // experiments use is fitted on 16,384 tokens.
    let calibration = windows(&ids, 128, 256);
    let device = burn::tensor::Device::flex();
    let options = TestbedOptions::default();
    let tb = Testbed::build(
        &base.spec,
        &base.weights,
        &calibration,
        "wiki.valid.tokens",
        &base.name,
        &options,
        &device,
        |_, _| {},
    )
    .unwrap();
    assert_eq!((tb.experts, tb.expert_size), (64, 24));
    assert_eq!(tb.provenance.calibration_tokens, 256);
    for f in &tb.fit {
        // On its own calibration tokens a linear map predicts the norms far above chance.
        assert!(
            f.router_r2_mean > 0.3,
            "layer {}: R² {}",
            f.layer,
            f.router_r2_mean
        );
    }

    let dir = std::env::temp_dir().join(format!("testbed-{}", std::process::id()));
    tb.save(&dir).unwrap();
    let loaded = Testbed::load(&dir).unwrap();
    assert_eq!(loaded, tb);
    std::fs::remove_dir_all(&dir).ok();

    let moe = loaded.model(&base.spec, &base.weights, &device).unwrap();
    let dense = Transformer::new(base.spec.clone(), &base.weights, &device).unwrap();
    let prompt = vec![ids[300..364].to_vec()];
    let want = read_f32(
        dense
            .forward(&prompt, &mut dense.new_cache(1), LogitsAt::All)
            .unwrap(),
    )
    .unwrap();
    let mut all = UnitWeights(TopK::new(64, false).unwrap());
    let got = read_f32(
        moe.forward_routed(
            &prompt,
            &mut moe.new_cache(1),
            LogitsAt::All,
            &mut ExpertRouting::new(&mut all),
        )
        .unwrap(),
    )
    .unwrap();
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("64 of 64 experts vs dense: max |Δlogit| = {worst:.2e}");
    assert!(worst < 1e-3, "max |Δlogit| {worst}");
}
