//! Seeded **synthetic** query embeddings paired with synthetic outcomes — not real data.
//!
//! The studies of [`crate::study`] need, per prompt, a query embedding and every model's
//! outcome. This module makes both up, so that the studies (and tests, and a newcomer without
//! `../shared` or the MiniLM files) can run in seconds. The numbers it produces say how the
//! routers behave on a planted structure; they are never evidence about real models.
//!
//! # The generative model
//!
//! * An embedding space of width [`SyntheticEmbedding::dim`] with three orthonormal directions
//!   drawn from [`SyntheticEmbedding::seed`] (Gram–Schmidt on Gaussian vectors): a bias
//!   direction `e`, a difficulty direction `u` and a topic direction `v`. Tasks generated with
//!   the same [`SyntheticEmbedding`] share the space, so a router trained on one task can be
//!   scored on another (the out-of-distribution experiment).
//! * `n_groups` groups ("subjects"). Group `g` has a topic score `t_g ~ N(topic_shift, 1)` and
//!   a centroid `c_g = t_g·v + r_g`, with `r_g ~ N(0, I/dim)`.
//! * The outcomes of group `g` come from [`datasets::synthetic::generate`] (a one-parameter
//!   item-response model: latent difficulty `d_p ~ N(0, 1)`, `P(correct) = σ(a·(skill − d_p))`)
//!   with model `m`'s skill shifted by the group: `skill_m + topic_sensitivity_m · t_g`. A
//!   model with a non-zero sensitivity is better on some topics than on others, which is what
//!   a router can learn from the embedding; the difficulty adds a second, non-linear signal.
//! * Item `p` of group `g` gets the embedding
//!   `x_p = bias·e + difficulty_weight·d_p·u + group_weight·c_g + noise·ε_p`,
//!   `ε_p ~ N(0, I/dim)` (not normalised to unit length).
//!
//! Items are named `"{name} item {i} ({group})"`: the texts are unique per task name, and a
//! [`LookupEmbedder`] (see [`SyntheticTask::embedder`]) maps them back to their vectors, so the
//! text-level router APIs ([`crate::checkpoint::LoadedRouter`], [`crate::mf::MfMultiRouter`])
//! work on synthetic tasks too. Randomness: `ChaCha8Rng` seeded from the configuration, so the
//! same configuration always gives the same task.
//!
//! ```
//! use mf_router::synthetic::{SyntheticEmbedding, SyntheticTaskConfig, generate_task};
//!
//! let task = generate_task(&SyntheticTaskConfig::pair("demo", 200, 1), &SyntheticEmbedding::default())?;
//! assert_eq!(task.table.n_prompts(), 200);
//! assert_eq!(task.embeddings.len(), 200);
//! assert_eq!(task.embeddings.dim(), SyntheticEmbedding::default().dim);
//! # Ok::<(), mf_router::MfError>(())
//! ```

use datasets::synthetic::{SyntheticConfig, SyntheticModel, generate};
use datasets::{OutcomeTable, PromptMeta};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::adam::normal;
use crate::embed_cache::{EmbeddingMatrix, LookupEmbedder};
use crate::error::{MfError, Result};

/// The synthetic embedding space and how strongly each latent variable shows in it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyntheticEmbedding {
    /// Width of the vectors (≥ 3: three orthonormal directions are planted).
    pub dim: usize,
    /// Weight of the constant bias direction `e` (gives the bias-free MF head an intercept).
    pub bias: f64,
    /// Weight of the item difficulty along `u`.
    pub difficulty_weight: f64,
    /// Weight of the group centroid (topic score along `v` plus a random part).
    pub group_weight: f64,
    /// Standard deviation scale of the per-item noise (`noise · N(0, I/dim)`).
    pub noise: f64,
    /// Seed of the space (the three directions).
    pub seed: u64,
}

impl Default for SyntheticEmbedding {
    /// 32-d, bias 1, difficulty weight 1, group weight 1, noise 0.3, seed 0.
    fn default() -> Self {
        Self {
            dim: 32,
            bias: 1.0,
            difficulty_weight: 1.0,
            group_weight: 1.0,
            noise: 0.3,
            seed: 0,
        }
    }
}

impl SyntheticEmbedding {
    /// The model id the synthetic vectors are recorded under (checkpoints, lookup embedder).
    pub fn model_id(&self) -> String {
        format!("synthetic-embedding-{}d-seed{}", self.dim, self.seed)
    }

    /// Validates the fields ([`MfError::InvalidParameter`] naming the field).
    pub fn check(&self) -> Result<()> {
        if self.dim < 3 {
            return Err(MfError::param(
                "dim",
                format!("must be at least 3, got {}", self.dim),
            ));
        }
        for (name, v) in [
            ("bias", self.bias),
            ("difficulty_weight", self.difficulty_weight),
            ("group_weight", self.group_weight),
            ("noise", self.noise),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(MfError::param(
                    name,
                    format!("must be finite and >= 0, got {v}"),
                ));
            }
        }
        Ok(())
    }

    /// The three orthonormal directions `[e, u, v]` of the space.
    pub fn directions(&self) -> Result<[Vec<f64>; 3]> {
        self.check()?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5EED_D1EC_7105);
        let mut out: Vec<Vec<f64>> = Vec::with_capacity(3);
        while out.len() < 3 {
            let mut x: Vec<f64> = (0..self.dim).map(|_| normal(&mut rng)).collect();
            for b in &out {
                let dot: f64 = x.iter().zip(b).map(|(a, b)| a * b).sum();
                x.iter_mut().zip(b).for_each(|(a, b)| *a -= dot * b);
            }
            let n = x.iter().map(|a| a * a).sum::<f64>().sqrt();
            if n > 1e-6 {
                out.push(x.into_iter().map(|a| a / n).collect());
            }
        }
        let [e, u, v]: [Vec<f64>; 3] = out
            .try_into()
            .map_err(|_| MfError::param("dim", "could not draw three directions"))?;
        Ok([e, u, v])
    }
}

/// What [`generate_task`] makes: models, groups, outcomes and split.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticTaskConfig {
    /// Task name: the table's name and the prefix of every item text.
    pub name: String,
    /// Items (≥ `n_groups`).
    pub n_items: usize,
    /// Groups (≥ 1), named `"{group_prefix}-{g:02}"`.
    pub n_groups: usize,
    /// Prefix of the group names.
    pub group_prefix: String,
    /// The models: name, base skill and cost per call (as in [`datasets::synthetic`]).
    pub models: Vec<SyntheticModel>,
    /// Per model: skill shift per unit of the group's topic score (same length as `models`).
    pub topic_sensitivity: Vec<f64>,
    /// Mean of the groups' topic scores (0 in distribution; a shift moves a task away).
    pub topic_shift: f64,
    /// Item discrimination `a` of the response model.
    pub discrimination: f64,
    /// Share of each group's items labelled `train` (the rest `test`).
    pub train_fraction: f64,
    /// Seed of the groups, difficulties, outcomes and noise.
    pub seed: u64,
}

impl SyntheticTaskConfig {
    /// RouteLLM's weak/strong setting: `weak` (skill −0.3, cost 1, topic sensitivity 1) and
    /// `strong` (skill 1, cost 10, insensitive), 40 groups, discrimination 1.5, half train.
    pub fn pair(name: &str, n_items: usize, seed: u64) -> Self {
        Self {
            name: name.into(),
            n_items,
            n_groups: 40,
            group_prefix: "group".into(),
            models: vec![
                SyntheticModel::new("weak", -0.3, 1.0),
                SyntheticModel::new("strong", 1.0, 10.0),
            ],
            topic_sensitivity: vec![1.0, 0.0],
            topic_shift: 0.0,
            discrimination: 1.5,
            train_fraction: 0.5,
            seed,
        }
    }

    /// Five models `tiny` … `xl` (skills −1.0, −0.4, 0.2, 0.7, 1.2; costs 0.5, 1, 3, 8, 20, as
    /// [`SyntheticConfig::default_multi`]) whose topic sensitivities fall with size (1.0, 0.7,
    /// 0.4, 0.2, 0), 20 groups, otherwise like [`Self::pair`].
    pub fn multi(name: &str, n_items: usize, seed: u64) -> Self {
        Self {
            n_groups: 20,
            models: SyntheticConfig::default_multi().models,
            topic_sensitivity: vec![1.0, 0.7, 0.4, 0.2, 0.0],
            ..Self::pair(name, n_items, seed)
        }
    }

    /// Validates the fields that [`datasets::synthetic`] does not check itself.
    pub fn check(&self) -> Result<()> {
        if self.name.is_empty() {
            return Err(MfError::param("name", "must not be empty"));
        }
        if self.n_groups == 0 {
            return Err(MfError::param("n_groups", "must be at least 1"));
        }
        if self.n_items < self.n_groups {
            return Err(MfError::param(
                "n_items",
                format!(
                    "need at least one item per group ({} groups), got {}",
                    self.n_groups, self.n_items
                ),
            ));
        }
        if self.topic_sensitivity.len() != self.models.len() {
            return Err(MfError::Shape {
                what: "topic_sensitivity (one per model)".into(),
                expected: self.models.len(),
                got: self.topic_sensitivity.len(),
            });
        }
        if let Some(s) = self.topic_sensitivity.iter().find(|s| !s.is_finite()) {
            return Err(MfError::param(
                "topic_sensitivity",
                format!("must be finite, got {s}"),
            ));
        }
        if !self.topic_shift.is_finite() {
            return Err(MfError::param("topic_shift", "must be finite"));
        }
        Ok(())
    }
}

/// A synthetic task: outcomes, embeddings and the latent variables behind them.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticTask {
    /// The outcome table (binary, with costs; prompts carry text, group and split).
    pub table: OutcomeTable,
    /// One embedding per prompt, in row order.
    pub embeddings: EmbeddingMatrix,
    /// Latent difficulty of each prompt.
    pub difficulty: Vec<f64>,
    /// Topic score of each prompt's group.
    pub topic: Vec<f64>,
    /// The id the vectors are recorded under ([`SyntheticEmbedding::model_id`]).
    pub model_id: String,
}

impl SyntheticTask {
    /// Prompt texts in row order.
    pub fn texts(&self) -> Vec<&str> {
        self.table
            .prompts()
            .iter()
            .map(|p| p.text.as_deref().unwrap_or(""))
            .collect()
    }

    /// A [`LookupEmbedder`] that maps this task's texts to their vectors.
    pub fn embedder(&self) -> Result<LookupEmbedder> {
        let mut e = LookupEmbedder::new(self.model_id.clone(), self.embeddings.dim());
        self.add_to(&mut e)?;
        Ok(e)
    }

    /// Adds this task's texts and vectors to `embedder` (to serve several tasks from one).
    pub fn add_to(&self, embedder: &mut LookupEmbedder) -> Result<()> {
        for (i, t) in self.texts().into_iter().enumerate() {
            embedder.insert(t, self.embeddings.row(i))?;
        }
        Ok(())
    }
}

/// Generates a task (see the module docs for the model).
pub fn generate_task(
    cfg: &SyntheticTaskConfig,
    space: &SyntheticEmbedding,
) -> Result<SyntheticTask> {
    cfg.check()?;
    let [e, u, v] = space.directions()?;
    let dim = space.dim;
    let scale = 1.0 / (dim as f64).sqrt();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (mut prompts, mut scores, mut costs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut data, mut difficulty, mut topic) = (Vec::new(), Vec::new(), Vec::new());
    let base = cfg.n_items / cfg.n_groups;
    let extra = cfg.n_items % cfg.n_groups;
    for g in 0..cfg.n_groups {
        let group = format!("{}-{g:02}", cfg.group_prefix);
        let t = cfg.topic_shift + normal(&mut rng);
        let centroid: Vec<f64> = (0..dim)
            .map(|k| t * v[k] + scale * normal(&mut rng))
            .collect();
        let n_g = base + usize::from(g < extra);
        let models = cfg
            .models
            .iter()
            .zip(&cfg.topic_sensitivity)
            .map(|(m, s)| SyntheticModel::new(m.name.clone(), m.skill + s * t, m.cost_per_call))
            .collect();
        let out = generate(&SyntheticConfig {
            n_prompts: n_g,
            models,
            discrimination: cfg.discrimination,
            graded: false,
            seed: cfg
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(g as u64 + 1),
            train_fraction: cfg.train_fraction,
        })?;
        for (p, meta) in out.table.prompts().iter().enumerate() {
            let i = prompts.len();
            let mut pm = PromptMeta::new(format!("{}-{i:05}", cfg.name))
                .with_text(format!("{} item {i} ({group})", cfg.name))
                .with_group(group.clone());
            if let Some(s) = &meta.split {
                pm = pm.with_split(s.clone());
            }
            prompts.push(pm);
            scores.extend_from_slice(out.table.scores_of(p));
            if let Some(c) = out.table.costs_of(p) {
                costs.extend_from_slice(c);
            }
            let d = out.difficulty[p];
            for k in 0..dim {
                let x = space.bias * e[k]
                    + space.difficulty_weight * d * u[k]
                    + space.group_weight * centroid[k]
                    + space.noise * scale * normal(&mut rng);
                data.push(x as f32);
            }
            difficulty.push(d);
            topic.push(t);
        }
    }
    let n_cost = costs.len();
    let table = OutcomeTable::new(
        cfg.name.clone(),
        datasets::ScoreKind::Binary,
        cfg.models.iter().map(|m| m.name.clone()).collect(),
        prompts,
        scores,
        (n_cost > 0).then_some(costs),
    )?;
    Ok(SyntheticTask {
        table,
        embeddings: EmbeddingMatrix::new(dim, data)?,
        difficulty,
        topic,
        model_id: space.model_id(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed_cache::TextEmbedder;

    #[test]
    fn directions_are_orthonormal() {
        let [e, u, v] = SyntheticEmbedding::default().directions().unwrap();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        assert!((dot(&e, &e) - 1.0).abs() < 1e-9);
        assert!(dot(&e, &u).abs() < 1e-9 && dot(&u, &v).abs() < 1e-9 && dot(&e, &v).abs() < 1e-9);
    }

    #[test]
    fn tasks_are_seeded_and_looked_up() {
        let space = SyntheticEmbedding::default();
        let a = generate_task(&SyntheticTaskConfig::pair("t", 120, 3), &space).unwrap();
        let b = generate_task(&SyntheticTaskConfig::pair("t", 120, 3), &space).unwrap();
        assert_eq!(a, b);
        let emb = a.embedder().unwrap();
        let got = emb.embed_texts(&[a.texts()[5]]).unwrap();
        assert_eq!(got[0], a.embeddings.row(5));
        assert!(emb.embed_texts(&["not an item"]).is_err());
    }

    #[test]
    fn bad_fields_are_named() {
        let mut c = SyntheticTaskConfig::pair("t", 100, 0);
        c.topic_sensitivity.pop();
        assert!(
            generate_task(&c, &SyntheticEmbedding::default())
                .unwrap_err()
                .to_string()
                .contains("topic_sensitivity")
        );
        let space = SyntheticEmbedding {
            dim: 2,
            ..SyntheticEmbedding::default()
        };
        assert!(space.check().unwrap_err().to_string().contains("dim"));
    }
}
