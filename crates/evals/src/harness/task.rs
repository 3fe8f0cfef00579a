//! The task registry: names, families, few-shot settings and loading items from the data folder.

use std::path::Path;

use super::data;
use super::error::{HarnessError, Result};
use super::exec;
use super::generation;
use super::multiple_choice::{self, McItem};
use super::perplexity;
use super::request::TextRequest;

/// A benchmark task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// HellaSwag (10,042 validation items), acc / acc_norm.
    Hellaswag,
    /// ARC-Easy test (2,376), acc / acc_norm.
    ArcEasy,
    /// ARC-Challenge test (1,172), acc / acc_norm.
    ArcChallenge,
    /// PIQA validation (1,838), acc / acc_norm.
    Piqa,
    /// WinoGrande dev (1,267), partial scoring, acc.
    Winogrande,
    /// LAMBADA OpenAI (5,153), acc and perplexity.
    LambadaOpenai,
    /// LAMBADA OpenAI as generation (`lambada_gen`): greedy continuation of the passage, exact
    /// match of its first word against the passage's last word (the guided-decoding study's
    /// protocol; [`crate::harness::extract::first_word`]).
    LambadaGen,
    /// MMLU 5-shot: all 57 subjects (`None`) or one.
    Mmlu(Option<String>),
    /// GSM8K test (1,319), 5-shot generation, exact match strict / flexible.
    Gsm8k,
    /// MATH-500, zero-shot generation, boxed-answer exact match.
    Math500,
    /// WikiText-2 test (62 documents), rolling log-likelihood.
    Wikitext2,
    /// HumanEval (164), greedy pass@1.
    Humaneval,
    /// MBPP test split (task ids 11–510), greedy pass@1.
    Mbpp,
}

/// How a task scores its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Log-likelihood of each choice.
    MultipleChoice,
    /// Log-likelihood of a target (LAMBADA).
    TargetLoglik,
    /// Rolling log-likelihood of whole documents.
    Rolling,
    /// Greedy generation with answer extraction.
    Generation,
    /// Generation whose code is executed against tests.
    Code,
}

impl Task {
    /// Every task name [`Task::parse`] accepts (besides `mmlu_<subject>`).
    pub const NAMES: [&'static str; 13] = [
        "hellaswag",
        "arc_easy",
        "arc_challenge",
        "piqa",
        "winogrande",
        "lambada_openai",
        "lambada_gen",
        "mmlu",
        "gsm8k",
        "math500",
        "wikitext2",
        "humaneval",
        "mbpp",
    ];

    /// Parses a task name (lm-eval spelling; `wikitext` is accepted for `wikitext2`).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "hellaswag" => Self::Hellaswag,
            "arc_easy" => Self::ArcEasy,
            "arc_challenge" => Self::ArcChallenge,
            "piqa" => Self::Piqa,
            "winogrande" => Self::Winogrande,
            "lambada_openai" | "lambada" => Self::LambadaOpenai,
            "lambada_gen" | "lambada_generative" => Self::LambadaGen,
            "mmlu" => Self::Mmlu(None),
            "gsm8k" => Self::Gsm8k,
            "math500" | "math" => Self::Math500,
            "wikitext2" | "wikitext" => Self::Wikitext2,
            "humaneval" => Self::Humaneval,
            "mbpp" => Self::Mbpp,
            other => match other.strip_prefix("mmlu_") {
                Some(s) if !s.is_empty() => Self::Mmlu(Some(s.to_string())),
                _ => {
                    return Err(HarnessError::invalid(
                        other,
                        format!(
                            "unknown task; known: {}, mmlu_<subject>",
                            Self::NAMES.join(", ")
                        ),
                    ));
                }
            },
        })
    }

    /// The task's name (`mmlu_<subject>` for one subject).
    pub fn name(&self) -> String {
        match self {
            Self::Hellaswag => "hellaswag".into(),
            Self::ArcEasy => "arc_easy".into(),
            Self::ArcChallenge => "arc_challenge".into(),
            Self::Piqa => "piqa".into(),
            Self::Winogrande => "winogrande".into(),
            Self::LambadaOpenai => "lambada_openai".into(),
            Self::LambadaGen => "lambada_gen".into(),
            Self::Mmlu(None) => "mmlu".into(),
            Self::Mmlu(Some(s)) => format!("mmlu_{s}"),
            Self::Gsm8k => "gsm8k".into(),
            Self::Math500 => "math500".into(),
            Self::Wikitext2 => "wikitext2".into(),
            Self::Humaneval => "humaneval".into(),
            Self::Mbpp => "mbpp".into(),
        }
    }

    /// The scoring family.
    pub fn family(&self) -> Family {
        match self {
            Self::Hellaswag
            | Self::ArcEasy
            | Self::ArcChallenge
            | Self::Piqa
            | Self::Winogrande
            | Self::Mmlu(_) => Family::MultipleChoice,
            Self::LambadaOpenai => Family::TargetLoglik,
            Self::Wikitext2 => Family::Rolling,
            Self::Gsm8k | Self::Math500 | Self::LambadaGen => Family::Generation,
            Self::Humaneval | Self::Mbpp => Family::Code,
        }
    }

    /// Few-shot examples in the prompt.
    pub fn num_fewshot(&self) -> usize {
        match self {
            Self::Mmlu(_) | Self::Gsm8k => 5,
            _ => 0,
        }
    }

    /// Loads the task's items from the shared data folder, in source order. MMLU items are
    /// named `mmlu_<subject>` (group `mmlu`), subjects in sorted order.
    pub fn load(&self, dir: &Path) -> Result<Vec<Item>> {
        let name = self.name();
        let mc = |items: Vec<McItem>| -> Vec<Item> {
            items
                .into_iter()
                .enumerate()
                .map(|(i, m)| Item::new(&name, i, ItemKind::MultipleChoice(m)))
                .collect()
        };
        Ok(match self {
            Self::Hellaswag => mc(data::load_hellaswag(dir)?
                .iter()
                .map(multiple_choice::hellaswag_item)
                .collect()),
            Self::ArcEasy | Self::ArcChallenge => mc(data::load_arc(dir, *self == Self::ArcChallenge)?
                .iter()
                .map(multiple_choice::arc_item)
                .collect()),
            Self::Piqa => mc(data::load_piqa(dir)?
                .iter()
                .map(multiple_choice::piqa_item)
                .collect()),
            Self::Winogrande => mc(data::load_winogrande(dir)?
                .iter()
                .map(multiple_choice::winogrande_item)
                .collect()),
            Self::LambadaOpenai => data::load_lambada(dir)?
                .iter()
                .enumerate()
                .map(|(i, r)| Item::new(&name, i, ItemKind::Target(perplexity::lambada_request(r))))
                .collect(),
            Self::LambadaGen => data::load_lambada(dir)?
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let req = perplexity::lambada_request(r);
                    Item::new(
                        &name,
                        i,
                        ItemKind::LastWord {
                            prompt: req.context,
                            word: req.continuation.trim().to_string(),
                        },
                    )
                })
                .collect(),
            Self::Mmlu(subject) => {
                let subjects = match subject {
                    Some(s) => vec![s.clone()],
                    None => data::mmlu_subjects(dir)?,
                };
                let mut out = Vec::new();
                for s in subjects {
                    let prefix = multiple_choice::mmlu_prefix(&s, &data::load_mmlu(dir, &s, "dev")?, 5);
                    let shared: std::sync::Arc<str> = prefix.as_str().into();
                    for (i, row) in data::load_mmlu(dir, &s, "test")?.iter().enumerate() {
                        let mut it = Item::new(
                            &format!("mmlu_{s}"),
                            i,
                            ItemKind::MultipleChoice(multiple_choice::mmlu_item(&prefix, row)),
                        );
                        it.group = Some("mmlu".into());
                        it.shared_prefix = Some(shared.clone());
                        out.push(it);
                    }
                }
                out
            }
            Self::Gsm8k => {
                let prefix = generation::gsm8k_prefix(&data::load_gsm8k(dir, "train")?, 5);
                let shared: std::sync::Arc<str> = prefix.as_str().into();
                data::load_gsm8k(dir, "test")?
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let mut it = Item::new(
                            &name,
                            i,
                            ItemKind::Gsm8k {
                                prompt: generation::gsm8k_prompt(&prefix, r),
                                reference: r.answer.clone(),
                            },
                        );
                        it.shared_prefix = Some(shared.clone());
                        it
                    })
                    .collect()
            }
            Self::Math500 => data::load_math500(dir)?
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    Item::new(
                        &name,
                        i,
                        ItemKind::Math {
                            prompt: generation::math_prompt(r),
                            answer: r.answer.clone(),
                        },
                    )
                })
                .collect(),
            Self::Wikitext2 => perplexity::wikitext_documents(&data::load_wikitext_raw(dir)?)
                .into_iter()
                .enumerate()
                .map(|(i, d)| Item::new(&name, i, ItemKind::Rolling { title: d.title, page: d.page }))
                .collect(),
            Self::Humaneval => data::load_humaneval(dir)?
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    let check = format!("\n{}\ncheck({})\n", p.test, p.entry_point);
                    Item::new(
                        &name,
                        i,
                        ItemKind::Code {
                            prompt: p.prompt.clone(),
                            program_head: p.prompt,
                            program_tail: check,
                            until: ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
                                .map(String::from)
                                .to_vec(),
                        },
                    )
                })
                .collect(),
            Self::Mbpp => data::load_mbpp(dir)?
                .into_iter()
                .filter(|p| (11..=510).contains(&p.task_id))
                .enumerate()
                .map(|(i, p)| {
                    let prompt = format!(
                        "You are an expert Python programmer, and here is your task: {} Your code should pass these tests:\n\n{}\n[BEGIN]\n",
                        p.text,
                        p.test_list.join("\n")
                    );
                    let tail = exec::mbpp_program("", &p.test_setup_code, &p.test_list);
                    Item::new(
                        &name,
                        i,
                        ItemKind::Code {
                            prompt,
                            program_head: String::new(),
                            program_tail: tail,
                            until: vec!["[DONE]".into()],
                        },
                    )
                })
                .collect(),
        })
    }
}

/// What an item asks of the model.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// Score each choice.
    MultipleChoice(McItem),
    /// Score a target continuation (LAMBADA).
    Target(TextRequest),
    /// Rolling log-likelihood of a whole document.
    Rolling {
        /// Heading line.
        title: String,
        /// Original page text (words and bytes are counted on it).
        page: String,
    },
    /// Generation of a passage's last word (LAMBADA as generation).
    LastWord {
        /// The passage without its last word (no trailing space).
        prompt: String,
        /// The last word.
        word: String,
    },
    /// GSM8K generation.
    Gsm8k {
        /// The full prompt.
        prompt: String,
        /// The full reference solution.
        reference: String,
    },
    /// MATH generation.
    Math {
        /// The prompt.
        prompt: String,
        /// The reference answer.
        answer: String,
    },
    /// Code generation executed against tests: program = head + completion + tail.
    Code {
        /// The prompt given to the model.
        prompt: String,
        /// Code placed before the completion (HumanEval: the prompt).
        program_head: String,
        /// Tests appended after the completion.
        program_tail: String,
        /// Stop strings.
        until: Vec<String>,
    },
}

/// One benchmark item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Task name (`mmlu_<subject>` for MMLU).
    pub task: String,
    /// Group name (`mmlu`), if any.
    pub group: Option<String>,
    /// 0-based index in the source file (per subject for MMLU).
    pub idx: usize,
    /// What to do with it.
    pub kind: ItemKind,
    /// The text every item of the task starts with (a few-shot block), when there is one: the
    /// scorer computes its KV cache once, alone, and starts each item from it, so an item's
    /// numbers never depend on which item came before it (a sharded run's items then score
    /// exactly as in a single run).
    pub shared_prefix: Option<std::sync::Arc<str>>,
}

impl Item {
    /// An item without a group.
    pub fn new(task: &str, idx: usize, kind: ItemKind) -> Self {
        Self {
            task: task.to_string(),
            group: None,
            idx,
            kind,
            shared_prefix: None,
        }
    }

    /// `task/idx`, the item's id in outputs and outcome tables.
    pub fn id(&self) -> String {
        format!("{}/{}", self.task, self.idx)
    }
}
