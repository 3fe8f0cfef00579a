//! The runner end to end on SmolLM2: offset/limit, per-sample JSONL, resume (already-scored
//! ids are skipped, a torn last line is tolerated), summary JSON, markdown, and the outputs of
//! two runs loading as a routing outcome table.

use burn::tensor::Device;
use evals::harness::{RunConfig, SampleRecord, Task, load_outcomes, record, run};
use lm::CausalLm;

fn skip_or_panic(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {what}");
    }
    eprintln!("skipping: {what}");
}

#[test]
fn runner_resumes_and_outputs_load_as_outcomes() {
    let path = match lm::locate::smollm2_gguf() {
        Ok(p) => p,
        Err(e) => return skip_or_panic(&e.to_string()),
    };
    if datasets::shared_data_dir().is_none() {
        return skip_or_panic("no shared/data folder beside the workspace");
    }
    let model = CausalLm::from_gguf(&path, &Device::flex()).unwrap();
    let out = std::env::temp_dir().join(format!("harness-runner-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut cfg = RunConfig {
        tasks: vec![
            Task::parse("arc_easy").unwrap(),
            Task::parse("winogrande").unwrap(),
        ],
        limit: Some(2),
        offset: 1,
        output: out.clone(),
        progress: false,
        ..RunConfig::default()
    };
    let first = run(&model, &cfg).unwrap();
    assert_eq!(first.iter().map(|s| s.n).collect::<Vec<_>>(), vec![2, 2]);
    let samples = out.join("samples_arc_easy.jsonl");
    let recs: Vec<SampleRecord> = record::read_records(&samples).unwrap();
    assert_eq!(
        recs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["arc_easy/1", "arc_easy/2"]
    );
    assert_eq!(recs[0].logliks.len(), 4);
    assert!(recs[0].tokens > 0 && recs[0].time_s > 0.0);
    // A crash mid-write leaves a torn line: it is ignored and the item scored again.
    let mut text = std::fs::read_to_string(&samples).unwrap();
    text.push_str("{\"id\": \"arc_easy/3\", \"tas");
    std::fs::write(&samples, &text).unwrap();
    let text = text
        .rsplit_once('\n')
        .map(|(a, _)| format!("{a}\n"))
        .unwrap();
    std::fs::write(&samples, &text).unwrap();
    cfg.limit = Some(3);
    let second = run(&model, &cfg).unwrap();
    let recs = record::read_records(&samples).unwrap();
    assert_eq!(recs.len(), 3, "only arc_easy/3 is new");
    assert_eq!(second[0].n, 3);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert!(results["results"]["arc_easy"]["acc,none"].is_number());
    assert!(results["results"]["arc_easy"]["acc_norm,none"].is_number());
    assert!(
        std::fs::read_to_string(out.join("results.md"))
            .unwrap()
            .contains("| winogrande | 3 | acc |")
    );
    // Two "models" (the same outputs twice) as an outcome table.
    let table = load_outcomes(
        "smoke",
        &[("a".into(), out.clone()), ("b".into(), out.clone())],
    )
    .unwrap();
    assert_eq!(table.n_prompts(), 6);
    assert_eq!(table.n_models(), 2);
    assert_eq!(table.prompts()[0].id, "arc_easy/1");
    assert_eq!(table.mean_score(0), table.mean_score(1));
    std::fs::remove_dir_all(&out).unwrap();
}
