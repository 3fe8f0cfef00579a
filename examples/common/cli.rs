//! Command-line conventions shared by the example binaries.
//!
//! Every example parses its arguments with clap (derive) and runs its body through [`run`], so
//! that a failure prints a sentence — `error: …`, then `  caused by: …` for each underlying
//! cause — and exits with status 1, instead of Rust's `Debug` form of the error. Values whose
//! type clap cannot check by itself (an engine, a device, a task name) go through the value
//! parsers below, so that clap names the flag when one is wrong:
//!
//! ```text
//! #[derive(Parser, Debug)]
//! #[command(name = "lm_eval", version, args_override_self = true, mut_args = cli::negative_numbers)]
//! struct Args {
//!     /// Engine.
//!     #[arg(long, default_value = "f32", value_parser = cli::engine())]
//!     engine: lm::Engine,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let args = Args::parse();
//!     cli::run(|| body(&args))
//! }
//! ```
//!
//! `args_override_self` keeps the hand-written parsers' rule that a repeated option takes its
//! last value; [`negative_numbers`] makes `--grid -3` an invalid value of `--grid` rather than an
//! unknown flag `-3`.

use std::error::Error;
use std::fmt::Display;
use std::process::ExitCode;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

/// Runs an example's body: exit status 0 when it returns `Ok`; otherwise [`print_error`] and
/// exit status 1.
pub fn run<E: Error + ?Sized>(body: impl FnOnce() -> Result<(), Box<E>>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&*e);
            ExitCode::FAILURE
        }
    }
}

/// Prints `error: {e}` and then `  caused by: {cause}` for each error in its `source()` chain to
/// stderr. A cause whose text the previous message already contains (`"{path}: {source}"`) is
/// not repeated.
pub fn print_error<E: Error + ?Sized>(e: &E) {
    let mut previous = e.to_string();
    eprintln!("error: {previous}");
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !previous.contains(&text) {
            eprintln!("  caused by: {text}");
        }
        previous = text;
        cause = c.source();
    }
}

/// A `mut_args` hook for `#[command(...)]`: lets every option that takes a value accept a
/// negative number, so that clap reports `--grid -3` as an invalid value of `--grid` (naming
/// the flag) instead of as an unexpected argument `-3`.
#[allow(dead_code, reason = "bh_moe and serve only use the error printer")]
pub fn negative_numbers(arg: clap::Arg) -> clap::Arg {
    if arg.get_action().takes_values() {
        arg.allow_negative_numbers(true)
    } else {
        arg
    }
}

/// The value parser of `--engine`: `f32`, `quantized` (or `q`), `quantized-x2` or
/// `quantized-f32`, read by
/// [`lm::Engine::parse`]; `--help` lists them and clap names the flag on a bad one.
#[allow(dead_code, reason = "not every example has --engine")]
pub fn engine() -> impl TypedValueParser<Value = lm::Engine> {
    PossibleValuesParser::new([
        PossibleValue::new("f32"),
        PossibleValue::new("quantized").alias("q"),
        PossibleValue::new("quantized-x2"),
        PossibleValue::new("quantized-f32"),
    ])
    .try_map(|s| lm::Engine::parse(&s))
}

/// A value parser that accepts a name when `check` does and keeps the name: with
/// `backend::device` it checks `--device` (the name is kept for the output), and clap reports a
/// bad one with the flag and `check`'s reason.
#[allow(dead_code, reason = "not every example has --device")]
pub fn checked_by<T: 'static, E: Display + 'static>(
    check: fn(&str) -> Result<T, E>,
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |name| {
        check(name)
            .map(|_| name.to_string())
            .map_err(|e| e.to_string())
    }
}

/// The value parser of a folder that must exist (`--data`): clap names the flag when it does
/// not.
#[allow(dead_code, reason = "not every example has --data")]
pub fn existing_dir(path: &str) -> Result<std::path::PathBuf, String> {
    let p = std::path::PathBuf::from(path);
    if p.is_dir() {
        Ok(p)
    } else if p.exists() {
        Err("not a folder".into())
    } else {
        Err("no such folder".into())
    }
}

/// The value parser of a task name (`--tasks`, comma-separated): [`evals::harness::Task::parse`],
/// its reason as the message.
#[allow(dead_code, reason = "not every example has --tasks")]
pub fn task(name: &str) -> Result<evals::harness::Task, String> {
    evals::harness::Task::parse(name).map_err(|e| match e {
        evals::harness::HarnessError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// `--shard` and `--merge`: the flags of the tools whose long runs split over machines
/// (`lm_eval`, `guided_decode`, `bh_moe`; docs/sharding.md).
#[allow(dead_code, reason = "only the sharded tools flatten it")]
#[derive(clap::Args, Debug, Clone)]
pub struct ShardArgs {
    /// Run only shard i of N of the work (round robin: items, or bh_moe's experiments)
    /// [default: all].
    #[arg(long, value_name = "i/N")]
    pub shard: Option<datasets::shard::Shard>,
    /// Merge the output folders of a sharded run (comma-separated) into --out and write its
    /// results from them (nothing is run again).
    #[arg(
        long,
        value_name = "DIRS",
        value_delimiter = ',',
        conflicts_with = "shard"
    )]
    pub merge: Vec<std::path::PathBuf>,
}
