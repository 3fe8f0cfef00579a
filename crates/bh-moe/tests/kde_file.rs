//! Saving and loading per-layer null distributions: round trips, and errors that name the file
//! and the field.

use std::path::PathBuf;

use bh_moe::{
    Bandwidth, BhMoeError, GaussianKde, KdeFile, KdeOptions, KdeRecord, Provenance, synthetic,
};
use serde_json::Value;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bh-moe-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-15 * b.abs().max(1e-300)
}

fn provenance(layer: usize) -> Provenance {
    Provenance {
        model: "synthetic".into(),
        layer,
        calibration: "synthetic::router_logits(50, 64, 10 + layer)".into(),
        tokens: 50,
        seed: None,
        max_samples: None,
    }
}

fn kde(layer: usize) -> GaussianKde {
    let calib: Vec<f64> = synthetic::router_logits(50, 64, 10 + layer as u64)
        .iter()
        .map(|&z| f64::from(z))
        .collect();
    let options = KdeOptions {
        bandwidth: Bandwidth::Silverman,
        max_samples: Some(1_000),
        seed: 3,
    };
    GaussianKde::fit_with(&calib, &options).unwrap()
}

fn file() -> KdeFile {
    KdeFile::new(
        (0..3)
            .map(|l| {
                let k = kde(l);
                let table = k.tabulate(16).unwrap();
                match l {
                    0 => KdeRecord::new(provenance(l), &k),
                    1 => KdeRecord::new(provenance(l), &k).with_table(&table),
                    _ => KdeRecord::new(provenance(l), &k)
                        .with_table(&table)
                        .without_samples(),
                }
            })
            .collect(),
    )
}

#[test]
fn round_trip_keeps_every_field() {
    let path = temp("round_trip.json");
    let original = file();
    original.save(&path).unwrap();
    let loaded = KdeFile::load(&path).unwrap();
    // Equal up to serde_json's float parsing (about an ulp; see `KdeFile::save`).
    assert_eq!(loaded.nulls.len(), original.nulls.len());
    for (a, b) in loaded.nulls.iter().zip(&original.nulls) {
        assert_eq!(a.provenance, b.provenance);
        assert_eq!(a.bandwidth_rule, b.bandwidth_rule);
        assert_eq!(a.source_samples, b.source_samples);
        assert!(close(a.factor, b.factor) && close(a.bandwidth, b.bandwidth));
        match (&a.samples, &b.samples) {
            (Some(x), Some(y)) => {
                assert!(x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(*p, *q)))
            }
            (None, None) => {}
            _ => panic!("samples kept differently"),
        }
        match (&a.table, &b.table) {
            (Some(x), Some(y)) => {
                assert!(close(x.start, y.start) && close(x.step, y.step));
                assert!(x.values.len() == y.values.len());
                assert!(
                    x.values
                        .iter()
                        .zip(&y.values)
                        .all(|(p, q)| (p - q).abs() <= 1e-15)
                );
            }
            (None, None) => {}
            _ => panic!("table kept differently"),
        }
    }
    // Layer 0 keeps samples only: its table is tabulated on load; the others are stored.
    let tables = loaded.tables(16).unwrap();
    for (l, t) in tables.iter().enumerate() {
        let fresh = kde(l).tabulate(16).unwrap();
        assert_eq!(t.values().len(), fresh.values().len(), "layer {l}");
        for x in [-4.0, -1.0, 0.0, 0.5, 2.0, 3.5, 6.0] {
            assert!((t.cdf(x) - fresh.cdf(x)).abs() < 1e-13, "layer {l} at {x}");
        }
    }
    // The rebuilt KDE is the fitted one (same samples, rule and bandwidth).
    let rebuilt = loaded.nulls[0].kde().unwrap();
    assert!(close(rebuilt.bandwidth(), kde(0).bandwidth()));
    assert!((rebuilt.cdf(1.0) - kde(0).cdf(1.0)).abs() < 1e-13);
    assert_eq!(loaded.nulls[0].source_samples, 50 * 64);
    assert!(
        loaded.nulls[2].kde().is_err(),
        "table-only records have no KDE"
    );
    // Provenance survives.
    assert_eq!(loaded.nulls[1].provenance, provenance(1));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"bandwidth_rule\":\"silverman\""));
    let _ = std::fs::remove_file(&path);
}

/// Saves a valid file, edits its JSON, and returns the load error.
fn load_edited(name: &str, edit: impl FnOnce(&mut Value)) -> BhMoeError {
    let path = temp(name);
    let mut v = serde_json::to_value(file()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let err = KdeFile::load(&path).unwrap_err();
    let _ = std::fs::remove_file(&path);
    err
}

fn field_of(err: &BhMoeError) -> String {
    match err {
        BhMoeError::Field { path, field, .. } => {
            assert!(err.to_string().contains(&path.display().to_string()));
            field.clone()
        }
        other => panic!("not a field error: {other}"),
    }
}

#[test]
fn invalid_fields_are_named() {
    let e = load_edited("format.json", |v| {
        v["format"] = "bh-moe/kde-nulls/v0".into()
    });
    assert_eq!(field_of(&e), "format");
    let e = load_edited("order.json", |v| {
        v["nulls"][1]["provenance"]["layer"] = 7.into()
    });
    assert_eq!(field_of(&e), "nulls[1].provenance.layer");
    let e = load_edited("empty.json", |v| v["nulls"] = Value::Array(vec![]));
    assert_eq!(field_of(&e), "nulls");
    let e = load_edited("decreasing.json", |v| {
        v["nulls"][2]["table"]["values"][5] = 0.9.into();
    });
    assert_eq!(field_of(&e), "nulls[2].table.values[6]");
    let e = load_edited("step.json", |v| {
        v["nulls"][1]["table"]["step"] = (-0.1).into()
    });
    assert_eq!(field_of(&e), "nulls[1].table.step");
    let e = load_edited("bandwidth.json", |v| {
        v["nulls"][0]["bandwidth"] = 0.5.into()
    });
    assert_eq!(field_of(&e), "nulls[0].bandwidth");
    assert!(e.to_string().contains("silverman"), "{e}");
    let e = load_edited("factor.json", |v| v["nulls"][0]["factor"] = 0.0.into());
    assert_eq!(field_of(&e), "nulls[0].factor");
    let e = load_edited("neither.json", |v| {
        v["nulls"][0].as_object_mut().unwrap().remove("samples");
    });
    assert_eq!(field_of(&e), "nulls[0]");
    let e = load_edited("few.json", |v| v["nulls"][0]["samples"] = vec![1.0].into());
    assert_eq!(field_of(&e), "nulls[0].samples");
    let e = load_edited("equal.json", |v| {
        v["nulls"][0]["samples"] = vec![1.0, 1.0].into()
    });
    assert_eq!(field_of(&e), "nulls[0].samples");
    let e = load_edited("source.json", |v| {
        v["nulls"][0]["source_samples"] = 3.into()
    });
    assert_eq!(field_of(&e), "nulls[0].source_samples");
}

#[test]
fn malformed_json_and_missing_files_name_the_file() {
    let e = load_edited("unknown.json", |v| v["nulls"][0]["colour"] = "red".into());
    assert!(matches!(e, BhMoeError::Json { .. }), "{e}");
    assert!(
        e.to_string().contains("unknown.json") && e.to_string().contains("colour"),
        "{e}"
    );
    let e = load_edited("missing.json", |v| {
        v["nulls"][0]["provenance"]
            .as_object_mut()
            .unwrap()
            .remove("tokens");
    });
    assert!(e.to_string().contains("tokens"), "{e}");
    let path = temp("does-not-exist.json");
    let e = KdeFile::load(&path).unwrap_err();
    assert!(matches!(e, BhMoeError::Io { .. }));
    assert!(e.to_string().contains("does-not-exist.json"));
}

#[test]
fn save_refuses_an_invalid_file() {
    let mut f = file();
    f.nulls[0].samples = None;
    let path = temp("refused.json");
    let e = f.save(&path).unwrap_err();
    assert_eq!(field_of(&e), "nulls[0]");
    assert!(!path.exists());
}
