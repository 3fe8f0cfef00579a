//! OLMoE against transformers on `shared/golden/olmoe_tiny` (a tiny random OLMoE: 3 layers,
//! 16 experts, trained top-4, `norm_topk_prob = false`): the Hub's per-expert safetensors, the
//! transformers-5 fused layout, a sharded copy, the older config style and the F32 GGUF must
//! reproduce every logit within 1e-4 at top-k 1, 2, 4, 8 and 16, every router logit within 1e-5,
//! and the greedy continuation; the Q8_0 GGUF within quantisation error. Broken checkpoints
//! (a missing expert, another expert count, a bad index) give typed errors naming the key.

mod common;

use lm::format::gguf::{GgufWriter, MetadataValue};
use lm::format::safetensors::f32_safetensors;
use lm::models::olmoe::{load_gguf, load_hf};
use lm::nn::moe::{ExpertRouting, RoutedLayer, RoutingObserver};
use lm::nn::tensor_io::read_f32;
use lm::{GgufFile, HostWeights, LmError, LogitsAt, OlmoeConfig, Transformer};
use routing_core::expert::TopK;

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn flat(v: &serde_json::Value) -> Vec<f32> {
    match v {
        serde_json::Value::Array(a) => a.iter().flat_map(flat).collect(),
        x => vec![x.as_f64().unwrap() as f32],
    }
}

/// Records the router logits of every layer.
#[derive(Default)]
struct Router(Vec<Vec<f32>>);

impl RoutingObserver for Router {
    fn observe(&mut self, routed: &RoutedLayer<'_>) {
        assert_eq!(routed.layer, self.0.len());
        self.0.push(routed.logits.to_vec());
    }
}

struct Diff {
    logits: f32,
    router: f32,
}

/// Max |Δlogit| over every case and top-k, max |Δrouter logit| at the trained k, and the
/// greedy continuation (asserted when `exact`).
fn check(model: &Transformer, golden: &serde_json::Value, what: &str, exact: bool) -> Diff {
    let mut d = Diff {
        logits: 0.0,
        router: 0.0,
    };
    let trained = golden["trained_top_k"].as_u64().unwrap() as usize;
    for case in golden["cases"].as_array().unwrap() {
        let k = case["top_k"].as_u64().unwrap() as usize;
        let ids = u32s(&case["input_ids"]);
        let mut cache = model.new_cache(1);
        let mut top_k = TopK::new(k, false).unwrap();
        let mut router = Router::default();
        let mut routing = ExpertRouting::observed(&mut top_k, &mut router);
        let got = read_f32(
            model
                .forward_routed(&[ids], &mut cache, LogitsAt::All, &mut routing)
                .unwrap(),
        )
        .unwrap();
        let want = flat(&case["logits"]);
        assert_eq!(got.len(), want.len(), "{what}");
        d.logits = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(d.logits, f32::max);
        // Router logits are recorded per layer at every k; they only depend on the layers
        // below, whose outputs change with k, so compare them where the golden file has them.
        if k == trained || !case["router_logits"].is_null() {
            let want: Vec<Vec<f32>> = case["router_logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(flat)
                .collect();
            assert_eq!(router.0.len(), want.len(), "{what}: layers");
            for (g, w) in router.0.iter().zip(&want) {
                assert_eq!(g.len(), w.len());
                d.router = g
                    .iter()
                    .zip(w)
                    .map(|(a, b)| (a - b).abs())
                    .fold(d.router, f32::max);
            }
        }
    }
    // Greedy decoding with the cache and the model's own top-k, one token a step.
    let g = &golden["greedy"];
    let mut cache = model.new_cache(1);
    let mut step = u32s(&g["input_ids"]);
    let mut out = Vec::new();
    for _ in 0..u32s(&g["generated"]).len() {
        let logits = read_f32(model.forward(&[step], &mut cache, LogitsAt::Last).unwrap()).unwrap();
        let next = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap() as u32;
        out.push(next);
        step = vec![next];
    }
    if exact {
        assert_eq!(out, u32s(&g["generated"]), "{what}: greedy continuation");
    } else {
        let same = out
            .iter()
            .zip(u32s(&g["generated"]))
            .take_while(|(a, b)| **a == *b)
            .count();
        eprintln!(
            "{what}: greedy continuation agrees on its first {same} of {} tokens",
            out.len()
        );
    }
    eprintln!(
        "{what}: max |Δlogit| = {:.2e}, max |Δrouter logit| = {:.2e}",
        d.logits, d.router
    );
    d
}

fn build(cfg: &OlmoeConfig, w: &HostWeights) -> Transformer {
    Transformer::new(cfg.spec().unwrap(), w, &common::test_device()).unwrap()
}

fn tmp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("olmoe-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_st(path: &std::path::Path, w: &HostWeights, keep: impl Fn(&str) -> bool) {
    let tensors: Vec<(&str, &[usize], &[f32])> = w
        .tensors
        .iter()
        .filter(|(n, _)| keep(n))
        .map(|(n, t)| (n.as_str(), t.shape.as_slice(), t.data.as_slice()))
        .collect();
    std::fs::write(path, f32_safetensors(&tensors).unwrap()).unwrap();
}

#[test]
fn olmoe_tiny_matches_transformers_in_every_layout() {
    let Some(dir) = common::golden_dir_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("olmoe_tiny/golden.json") else {
        return;
    };
    let root = dir.join("olmoe_tiny");

    let (cfg, w) = load_hf(&root.join("hf")).unwrap();
    assert_eq!((cfg.num_experts, cfg.num_experts_per_tok), (16, 4));
    assert!(!cfg.norm_topk_prob);
    let d = check(&build(&cfg, &w), &golden, "HF per-expert", true);
    assert!(d.logits <= 1e-4 && d.router <= 1e-5);

    let (cfg_f, w_f) = load_hf(&root.join("hf_fused")).unwrap();
    assert_eq!(cfg_f, cfg);
    assert_eq!(
        w_f.tensors, w.tensors,
        "fused layout unfuses to the per-expert weights"
    );
    let d = check(&build(&cfg_f, &w_f), &golden, "HF fused", true);
    assert!(d.logits <= 1e-4 && d.router <= 1e-5);

    // The published checkpoints' config style (`rope_theta`) and a sharded copy.
    let sharded = tmp_dir("sharded");
    std::fs::copy(
        root.join("hf/config_v4_style.json"),
        sharded.join("config.json"),
    )
    .unwrap();
    let first = |n: &str| n.starts_with("model.layers.0.") || n.starts_with("model.embed");
    write_st(&sharded.join("model-00001-of-00002.safetensors"), &w, first);
    write_st(&sharded.join("model-00002-of-00002.safetensors"), &w, |n| {
        !first(n)
    });
    let map: serde_json::Map<String, serde_json::Value> = w
        .tensors
        .keys()
        .map(|n| {
            let shard = if first(n) { 1 } else { 2 };
            (
                n.clone(),
                format!("model-0000{shard}-of-00002.safetensors").into(),
            )
        })
        .collect();
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    let index_path = sharded.join("model.safetensors.index.json");
    std::fs::write(&index_path, index.to_string()).unwrap();
    let (cfg_s, w_s) = load_hf(&sharded).unwrap();
    assert_eq!(cfg_s.rope_theta, 10_000.0);
    assert_eq!(w_s.tensors, w.tensors);
    let d = check(
        &build(&cfg_s, &w_s),
        &golden,
        "HF sharded, rope_theta config",
        true,
    );
    assert!(d.logits <= 1e-4 && d.router <= 1e-5);

    // A bad index: a key assigned to the wrong shard, then no weight_map.
    let mut wrong = index.clone();
    wrong["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors".into();
    std::fs::write(&index_path, wrong.to_string()).unwrap();
    let e = load_hf(&sharded).unwrap_err().to_string();
    assert!(
        e.contains("model.norm.weight") && e.contains("index.json"),
        "{e}"
    );
    std::fs::write(&index_path, r#"{"metadata": {}}"#).unwrap();
    let e = load_hf(&sharded).unwrap_err().to_string();
    assert!(e.contains("weight_map"), "{e}");
    let mut escape = index;
    escape["weight_map"]["model.norm.weight"] = "../model.safetensors".into();
    std::fs::write(&index_path, escape.to_string()).unwrap();
    let e = load_hf(&sharded).unwrap_err().to_string();
    assert!(e.contains("not a file name inside"), "{e}");
    std::fs::remove_dir_all(&sharded).ok();

    // A missing expert and another expert count: typed errors naming the keys.
    let broken = tmp_dir("broken");
    std::fs::copy(root.join("hf/config.json"), broken.join("config.json")).unwrap();
    write_st(&broken.join("model.safetensors"), &w, |n| {
        n != "model.layers.2.mlp.experts.5.up_proj.weight"
    });
    match load_hf(&broken) {
        Err(LmError::WeightKeys { missing, .. }) => {
            assert_eq!(missing, vec!["model.layers.2.mlp.experts.5.up_proj.weight"]);
        }
        other => panic!("missing expert: {other:?}"),
    }
    let config = std::fs::read_to_string(root.join("hf/config.json"))
        .unwrap()
        .replace(r#""num_experts": 16"#, r#""num_experts": 8"#);
    std::fs::write(broken.join("config.json"), config).unwrap();
    write_st(&broken.join("model.safetensors"), &w, |_| true);
    match load_hf(&broken) {
        Err(LmError::WeightKeys { unexpected, .. }) => {
            assert!(unexpected.contains(&"model.layers.0.mlp.experts.8.down_proj.weight".into()));
        }
        other => panic!("8 experts configured, 16 stored: {other:?}"),
    }
    std::fs::remove_dir_all(&broken).ok();

    // GGUF: merged expert tensors, un-permuted Q/K.
    let file = GgufFile::open(root.join("olmoe-tiny-f32.gguf")).unwrap();
    let (gcfg, gw) = load_gguf(&file, "olmoe-tiny-f32.gguf").unwrap();
    assert_eq!(gcfg.num_experts, 16);
    let d = check(&build(&gcfg, &gw), &golden, "GGUF F32", true);
    assert!(d.logits <= 1e-4 && d.router <= 1e-5);

    let file = GgufFile::open(root.join("olmoe-tiny-q8_0.gguf")).unwrap();
    let (qcfg, qw) = load_gguf(&file, "olmoe-tiny-q8_0.gguf").unwrap();
    // Within quantisation error at the weights: every Q8_0 value lies within one step
    // (its 32-block's max |w| / 127) of the F32 file's value.
    let mut worst_steps = 0f32;
    for (name, f) in &gw.tensors {
        let q = &qw.tensors[name];
        assert_eq!(q.shape, f.shape, "{name}");
        for (fb, qb) in f.data.chunks(32).zip(q.data.chunks(32)) {
            let step = fb.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
            for (a, b) in fb.iter().zip(qb) {
                if step > 0.0 {
                    worst_steps = worst_steps.max((a - b).abs() / step);
                }
            }
        }
    }
    eprintln!("GGUF Q8_0: worst weight error {worst_steps:.3} quantisation steps");
    assert!(worst_steps <= 1.0);
    // And at the outputs: the random model (weights N(0, 0.08)) amplifies the rounding; the
    // measured max |Δlogit| over the 20 cases is 0.23 (router logits 0.25), reported, bounded.
    let d = check(&build(&qcfg, &qw), &golden, "GGUF Q8_0", false);
    assert!(d.logits < 0.5, "Q8_0 max |Δlogit| {}", d.logits);
}

/// The golden F32 GGUF rewritten: tensors filtered by `keep`, metadata mapped by `meta`.
fn rewritten_gguf(
    root: &std::path::Path,
    tag: &str,
    keep: impl Fn(&str) -> bool,
    meta: impl Fn(&str, &MetadataValue) -> MetadataValue,
) -> GgufFile {
    let bytes = std::fs::read(root.join("olmoe-tiny-f32.gguf")).unwrap();
    let header = lm::GgufHeader::parse(&bytes).unwrap();
    let mut writer = GgufWriter::new();
    for entry in header.metadata() {
        writer.add_metadata(entry.key.clone(), meta(&entry.key, &entry.value));
    }
    for info in header.tensors().iter().filter(|i| keep(&i.name)) {
        let data = header.tensor_data(&bytes, info).unwrap().to_vec();
        writer
            .add_tensor(&info.name, &info.dims, info.ggml_type, data)
            .unwrap();
    }
    let path = std::env::temp_dir().join(format!("olmoe-{tag}-{}.gguf", std::process::id()));
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    let file = GgufFile::open(&path).unwrap();
    std::fs::remove_file(&path).ok();
    file
}

#[test]
fn corrupt_olmoe_ggufs_give_typed_errors_naming_the_tensor_or_key() {
    let Some(dir) = common::golden_dir_or_skip() else {
        return;
    };
    let root = dir.join("olmoe_tiny");
    // A merged expert tensor missing: every expert's leaf of that layer is reported missing.
    let file = rewritten_gguf(
        &root,
        "no-up",
        |n| n != "blk.1.ffn_up_exps.weight",
        |_, v| v.clone(),
    );
    match load_gguf(&file, "no-up.gguf") {
        Err(LmError::WeightKeys { missing, .. }) => {
            assert!(missing.contains(&"model.layers.1.mlp.experts.0.up_proj.weight".to_string()));
            assert!(
                missing
                    .iter()
                    .all(|m| m.contains("layers.1.") && m.contains("up_proj"))
            );
        }
        other => panic!("missing merged tensor: {other:?}"),
    }
    // Another expert count in the metadata than in the merged tensors.
    let file = rewritten_gguf(
        &root,
        "count",
        |_| true,
        |k, v| match k {
            "olmoe.expert_count" => MetadataValue::U32(8),
            _ => v.clone(),
        },
    );
    let e = load_gguf(&file, "count.gguf").unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, LmError::WeightShape { .. } | LmError::WeightKeys { .. }),
        "{text}"
    );
    assert!(text.contains("experts") || text.contains("exps"), "{text}");
    // No expert count at all: the key is named.
    let file = rewritten_gguf(
        &root,
        "nokey",
        |_| true,
        |k, v| match k {
            "olmoe.expert_count" => MetadataValue::String("eight".into()),
            _ => v.clone(),
        },
    );
    let text = load_gguf(&file, "nokey.gguf").unwrap_err().to_string();
    assert!(text.contains("olmoe.expert_count"), "{text}");
    // A truncated file: the parser names what it could not read, no panic.
    let bytes = std::fs::read(root.join("olmoe-tiny-f32.gguf")).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 7] {
        let text = match GgufFile::from_bytes(bytes[..cut].to_vec()) {
            Err(e) => e.to_string(),
            Ok(file) => load_gguf(&file, "truncated.gguf").unwrap_err().to_string(),
        };
        assert!(!text.is_empty());
        eprintln!("truncated at {cut}: {text}");
    }
}
