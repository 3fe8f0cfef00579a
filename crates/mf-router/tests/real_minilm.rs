//! End to end on real data with the real MiniLM encoder (small subset): embed, train, save,
//! reload with `load_with_minilm`, identical scores; the pair router agrees.
//! Skips with a note when ../shared/data or the model files are absent (panics under CI).

mod common;

use std::sync::Arc;

use mf_router::battles::{BattleOptions, TiePolicy, golden_battles};
use mf_router::checkpoint::{Checkpoint, load_with_minilm, load_with_minilm_int8};
use mf_router::embed_cache::{CachedEmbedder, MINILM_INT8_CACHE_ID, MINILM_MODEL_ID, TextEmbedder};
use mf_router::mf::{MfConfig, MfPairRouter, embed_prompts, train_mf};
use routing_core::PairRouter;

#[test]
fn minilm_mf_round_trip_on_mmlu_subset() {
    let Some(data) = datasets::require_shared_data() else {
        return;
    };
    let Some(model_dir) = common::minilm_dir_or_skip() else {
        return;
    };
    let full = datasets::load_routellm_mmlu(
        &data.join("routellm_evals"),
        &datasets::RouteLlmOptions::default(),
    )
    .unwrap()
    .data;
    let rows: Vec<usize> = (0..full.n_prompts())
        .step_by(full.n_prompts() / 24)
        .take(24)
        .collect();
    let t = full.take_rows(&rows).unwrap();
    let enc = lm::models::bert::SentenceEncoder::from_dir(model_dir, &burn::tensor::Device::flex())
        .unwrap();
    assert_eq!(enc.model_id(), MINILM_MODEL_ID);
    let dir = common::tmp_dir("minilm");
    let cached: Arc<dyn TextEmbedder + Send + Sync> =
        Arc::new(CachedEmbedder::open(enc, dir.join("cache.mfemb")).unwrap());
    let emb = embed_prompts(cached.as_ref(), t.prompts()).unwrap();
    assert_eq!(emb.dim(), 384);
    let (b, _) = golden_battles(&t, None, &BattleOptions::golden(TiePolicy::Half)).unwrap();
    let cfg = MfConfig {
        epochs: 3,
        ..MfConfig::default()
    };
    let (model, _) = train_mf(&cfg, t.models(), &emb, &b, &[]).unwrap();
    let (weak, strong) = (&t.models()[0], &t.models()[1]);
    let router = MfPairRouter::new(Arc::new(model.clone()), cached.clone(), weak, strong).unwrap();
    let s_router = router.score(t.prompts()).unwrap();
    let ck = Checkpoint::mf(model, weak, strong, MINILM_MODEL_ID)
        .unwrap()
        .with_threshold(0.5, None);
    let ck_dir = dir.join("ck");
    ck.save(&ck_dir).unwrap();
    let loaded = load_with_minilm(&ck_dir).unwrap();
    let texts: Vec<&str> = t
        .prompts()
        .iter()
        .map(|p| p.text.as_deref().unwrap())
        .collect();
    let s_loaded = loaded.score(&texts).unwrap();
    let s_mem = ck.score_embeddings(&emb).unwrap();
    // Cached (batched) and freshly computed embeddings agree to float rounding; the stored
    // model scores the same embeddings bit-identically.
    for ((a, b), c) in s_loaded.iter().zip(&s_mem).zip(&s_router) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        assert_eq!(f64::from(*b), (*c as f32) as f64);
    }
    let _ = loaded.route(texts[0]).unwrap();

    // The int8 encoder serves the same checkpoint (same model id), keeps its vectors out of the
    // f32 cache (different cache id: opening the f32 cache file with it is an error), and moves
    // the scores only a little.
    let fast = load_with_minilm_int8(&ck_dir).unwrap();
    assert_eq!(fast.embedder().model_id(), MINILM_MODEL_ID);
    assert_eq!(fast.embedder().cache_id(), MINILM_INT8_CACHE_ID);
    assert!(CachedEmbedder::open(fast.embedder(), dir.join("cache.mfemb")).is_err());
    let s_fast = fast.score(&texts).unwrap();
    let worst = s_fast
        .iter()
        .zip(&s_loaded)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "int8 vs f32 router scores on {} prompts: max |Δ| {worst:.2e}",
        texts.len()
    );
    assert!(worst < 0.02, "int8 moved a score by {worst}");
}
