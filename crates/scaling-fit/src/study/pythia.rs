//! Pythia: LAMBADA log-perplexity → task accuracy.

use std::collections::BTreeMap;
use std::path::Path;

use datasets::scaling::{PythiaEval, load_pythia_evals, pythia_params};

use super::figures;
use super::report::{ObservedPredicted, PythiaSection, PythiaTask, SizeOnlyFit};
use super::{Clock, Figure, Step, StudyError};
use crate::sigmoid::{RichardsConfig, fit_richards};

/// The tasks and their chance accuracy; the first two get a figure.
const TASKS: [(&str, f64); 6] = [
    ("lambada_openai", 0.0),
    ("arc_easy", 0.25),
    ("arc_challenge", 0.25),
    ("piqa", 0.5),
    ("sciq", 0.25),
    ("winogrande", 0.5),
];

/// Checkpoints before this step are dropped.
const MIN_STEP: u64 = 1000;

/// One (checkpoint evaluation, −ln LAMBADA perplexity) pair.
type Row<'a> = (&'a PythiaEval, f64);

/// Whether the model is one of the held-out 12 B models.
fn is_big(model: &str) -> bool {
    model.starts_with("pythia-12b")
}

/// The Pythia section: per task, a Richards curve from LAMBADA log-perplexity to accuracy
/// fitted on the models up to 6.9 B, predicting the 12 B models; and a size-only map.
pub(super) fn run(
    dir: &Path,
    clock: &mut Clock<'_>,
    figs: &mut Vec<Figure>,
) -> Result<PythiaSection, StudyError> {
    clock.say("Pythia");
    let path = dir.join("pythia_evals");
    let evals = clock
        .time("load Pythia evals", || load_pythia_evals(&path))
        .map_err(|source| StudyError::Load {
            dataset: "Pythia evaluations".into(),
            path: path.clone(),
            source: Box::new(source),
        })?
        .data;
    // (model, step) → LAMBADA perplexity.
    let mut ppl: BTreeMap<(String, u64), f64> = BTreeMap::new();
    for e in evals
        .iter()
        .filter(|e| e.task == "lambada_openai" && e.metric == "ppl")
    {
        ppl.insert((e.model.clone(), e.step), e.value);
    }
    let final_step = evals.iter().map(|e| e.step).max().unwrap_or(0);
    let mut tasks = Vec::new();
    for (i, &(task, chance)) in TASKS.iter().enumerate() {
        let rows: Vec<Row> = evals
            .iter()
            .filter(|e| e.task == task && e.metric == "acc" && e.step >= MIN_STEP)
            .filter_map(|e| ppl.get(&(e.model.clone(), e.step)).map(|p| (e, -p.ln())))
            .collect();
        let (train, test): (Vec<&Row>, Vec<&Row>) =
            rows.iter().partition(|(e, _)| !is_big(&e.model));
        if test.is_empty() {
            return Err(StudyError::Invalid {
                path,
                reason: format!("no checkpoint of the large models scored on {task} to hold out"),
            });
        }
        let x: Vec<f64> = train.iter().map(|r| r.1).collect();
        let y: Vec<f64> = train.iter().map(|r| r.0.value).collect();
        let curve = fit_richards(&x, &y, &RichardsConfig::with_floor(chance))
            .step(&format!("Pythia LAMBADA log-perplexity → {task} accuracy"))?;
        let checkpoints_mae = test
            .iter()
            .map(|(e, xx)| (curve.predict(*xx) - e.value).abs())
            .sum::<f64>()
            / test.len() as f64;
        let finals = test
            .iter()
            .filter(|(e, _)| e.step == final_step)
            .map(|(e, xx)| ObservedPredicted {
                observed: e.value,
                predicted: curve.predict(*xx),
            })
            .collect();
        // Size-only map at the final checkpoint.
        let fin: Vec<&PythiaEval> = evals
            .iter()
            .filter(|e| e.task == task && e.metric == "acc" && e.step == final_step)
            .collect();
        let (ftr, fte): (Vec<&&PythiaEval>, Vec<&&PythiaEval>) =
            fin.iter().partition(|e| !is_big(&e.model));
        let xs: Vec<f64> = ftr
            .iter()
            .filter_map(|e| pythia_params(&e.model))
            .map(f64::log10)
            .collect();
        let ys: Vec<f64> = ftr.iter().map(|e| e.value).collect();
        let size_only = match fit_richards(&xs, &ys, &RichardsConfig::with_floor(chance)) {
            Ok(c) => SizeOnlyFit::Fitted {
                curve: c,
                predictions: fte
                    .iter()
                    .filter_map(|e| {
                        pythia_params(&e.model).map(|n| ObservedPredicted {
                            observed: e.value,
                            predicted: c.predict(n.log10()),
                        })
                    })
                    .collect(),
            },
            Err(e) => SizeOnlyFit::Failed {
                reason: e.to_string(),
            },
        };
        let figure = if i <= 1 {
            let file_name = format!("pythia_{task}.svg");
            figs.push(figures::sigmoid(
                &file_name,
                &format!("Pythia: LAMBADA log-perplexity → {task} accuracy"),
                "−ln(LAMBADA perplexity)",
                &curve,
                (&x, &y),
                (
                    &test.iter().map(|r| r.1).collect::<Vec<_>>(),
                    &test.iter().map(|r| r.0.value).collect::<Vec<_>>(),
                ),
            ));
            Some(file_name)
        } else {
            None
        };
        tasks.push(PythiaTask {
            task: task.to_string(),
            chance,
            fit_points: train.len(),
            curve,
            checkpoints_mae,
            finals,
            size_only,
            figure,
        });
    }
    Ok(PythiaSection { final_step, tasks })
}
