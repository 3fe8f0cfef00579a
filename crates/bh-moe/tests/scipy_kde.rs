//! `GaussianKde` against `scipy.stats.gaussian_kde` (fixtures from `peer/kde_fixtures.py`,
//! scipy 1.17.1): bandwidth factor, kernel covariance, pdf, and cdf as
//! `integrate_box_1d(-inf, x)`, on a 3-component normal mixture with n = 50 and n = 1000 and
//! the Scott, Silverman and scalar (0.3) rules.
//!
//! Tolerances, with the measured worst cases (x86-64, 105 points) in brackets:
//! * factor and covariance: relative `1e−13` [4.4e−16 and 1.3e−15 — scipy's `neff = 1/Σwᵢ²`
//!   with `wᵢ = 1/n` is `n` only up to rounding, and numpy's weighted covariance sums in another
//!   order];
//! * pdf: absolute `1e−14` [3.3e−16], and relative `1e−12` where pdf > 1e−6 [7.9e−15];
//! * cdf: absolute `1e−14` [1.8e−15], far-tail points (±10h) included.
//!
//! The CDF table (64 steps per bandwidth) stays within its bound `7.4e−6` of scipy's cdf.
//!
//! The run prints the measured worst cases (`-- --nocapture`).

use bh_moe::{Bandwidth, GaussianKde};
use serde_json::Value;

const FACTOR_REL: f64 = 1e-13;
const PDF_ABS: f64 = 1e-14;
const PDF_REL: f64 = 1e-12;
const CDF_ABS: f64 = 1e-14;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn gaussian_kde_agrees_with_scipy() {
    let text = include_str!("fixtures/kde_scipy.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    assert_eq!(doc["scipy"], "1.17.1");
    let mut worst = [0.0_f64; 5]; // factor rel, covariance rel, pdf abs, pdf rel, cdf abs
    let mut checked = 0;
    for data in doc["datasets"].as_array().unwrap() {
        let samples = floats(&data["samples"]);
        for fit in data["fits"].as_array().unwrap() {
            let rule = match &fit["bw_method"] {
                Value::String(s) if s == "scott" => Bandwidth::Scott,
                Value::String(s) if s == "silverman" => Bandwidth::Silverman,
                Value::Number(f) => Bandwidth::Factor(f.as_f64().unwrap()),
                other => panic!("unknown bw_method {other}"),
            };
            let kde = GaussianKde::fit(&samples, rule).unwrap();
            let what = format!("{} {}", data["name"], fit["bw_method"]);
            let f = rel(kde.factor(), fit["factor"].as_f64().unwrap());
            let c = rel(kde.covariance(), fit["covariance"].as_f64().unwrap());
            assert!(f <= FACTOR_REL, "{what}: factor off by {f:e}");
            assert!(c <= FACTOR_REL, "{what}: covariance off by {c:e}");
            worst[0] = worst[0].max(f);
            worst[1] = worst[1].max(c);
            // The tabulated CDF stays within its stated bound of scipy's exact one.
            let table = kde.tabulate(64).unwrap();
            let points = floats(&fit["points"]);
            let pdf = floats(&fit["pdf"]);
            let cdf = floats(&fit["cdf"]);
            assert!(points.len() >= 20);
            for ((&x, &p), &c) in points.iter().zip(&pdf).zip(&cdf) {
                let (ours_p, ours_c) = (kde.pdf(x), kde.cdf(x));
                let dp = (ours_p - p).abs();
                assert!(dp <= PDF_ABS, "{what}: pdf({x}) = {ours_p}, scipy {p}");
                if p > 1e-6 {
                    assert!(
                        rel(ours_p, p) <= PDF_REL,
                        "{what}: pdf({x}) = {ours_p}, scipy {p}"
                    );
                    worst[3] = worst[3].max(rel(ours_p, p));
                }
                let dc = (ours_c - c).abs();
                assert!(dc <= CDF_ABS, "{what}: cdf({x}) = {ours_c}, scipy {c}");
                let dt = (table.cdf(x) - c).abs();
                assert!(
                    dt <= table.max_error() + CDF_ABS,
                    "{what}: table cdf({x}) off by {dt:e}"
                );
                // sf is summed separately; it must agree with 1 − cdf too.
                assert!((kde.sf(x) - (1.0 - c)).abs() <= CDF_ABS);
                worst[2] = worst[2].max(dp);
                worst[4] = worst[4].max(dc);
                checked += 1;
            }
        }
    }
    assert!(checked >= 100, "{checked}");
    println!(
        "worst: factor rel {:.1e}, covariance rel {:.1e}, pdf abs {:.1e}, pdf rel {:.1e}, cdf abs {:.1e} over {checked} points",
        worst[0], worst[1], worst[2], worst[3], worst[4]
    );
}

#[test]
fn scipy_factor_rules_in_one_dimension() {
    // scipy: scotts_factor = neff^(-1/(d+4)), silverman_factor = (neff (d+2)/4)^(-1/(d+4)).
    let text = include_str!("fixtures/kde_scipy.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    for data in doc["datasets"].as_array().unwrap() {
        let n = data["samples"].as_array().unwrap().len();
        for fit in data["fits"].as_array().unwrap() {
            let neff = fit["neff"].as_f64().unwrap();
            assert!(rel(neff, n as f64) < 1e-13);
            let expected = match fit["bw_method"].as_str() {
                Some("scott") => Bandwidth::Scott.factor(n),
                Some("silverman") => Bandwidth::Silverman.factor(n),
                _ => continue,
            };
            assert!(rel(expected, fit["factor"].as_f64().unwrap()) < FACTOR_REL);
        }
    }
}
