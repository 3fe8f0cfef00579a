//! Deterministic work splits for runs spread over several machines (`--shard i/N`).
//!
//! A [`Shard`] `i/N` takes the items at positions `p` of a run's ordered item list with
//! `p mod N = i` (round robin: every shard gets a similar mix when item sizes drift along a
//! file). The N shards of one run are disjoint and cover it; a merge step puts their outputs
//! back in the single run's order, so merged results equal the single run's.
//!
//! ```
//! use datasets::shard::Shard;
//!
//! let s: Shard = "1/3".parse()?;
//! assert_eq!(s.select((0..8).collect::<Vec<_>>()), vec![1, 4, 7]);
//! // The three shards cover the items exactly once.
//! let mut all: Vec<u32> = (0..3)
//!     .flat_map(|i| Shard::new(i, 3).unwrap().select((0..8).collect::<Vec<u32>>()))
//!     .collect();
//! all.sort();
//! assert_eq!(all, (0..8).collect::<Vec<_>>());
//! assert!("3/3".parse::<Shard>().is_err());
//! # Ok::<(), datasets::shard::ShardError>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// One of `count` shards: the items whose position `p` has `p mod count = index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// `i`, from 0.
    pub index: usize,
    /// `N`, at least 1.
    pub count: usize,
}

/// A shard that cannot be: `N = 0`, `i ≥ N`, or text that is not `i/N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard `{given}`: {reason} (want i/N with 0 ≤ i < N, e.g. 0/4)")]
pub struct ShardError {
    /// What was given.
    pub given: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl Shard {
    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// `count = 0` or `index ≥ count`.
    pub fn new(index: usize, count: usize) -> Result<Self, ShardError> {
        let given = format!("{index}/{count}");
        if count == 0 {
            return Err(ShardError {
                given,
                reason: "N must be at least 1",
            });
        }
        if index >= count {
            return Err(ShardError {
                given,
                reason: "i must be below N",
            });
        }
        Ok(Self { index, count })
    }

    /// The whole run as one shard (`0/1`).
    pub fn whole() -> Self {
        Self { index: 0, count: 1 }
    }

    /// Whether the item at `position` belongs to this shard.
    pub fn contains(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    /// The items of this shard, in order.
    pub fn select<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .enumerate()
            .filter(|(p, _)| self.contains(*p))
            .map(|(_, x)| x)
            .collect()
    }

    /// A folder-name-safe label: `shard-1-of-4`.
    pub fn label(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| ShardError {
            given: s.to_string(),
            reason,
        };
        let (i, n) = s.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let i = i
            .trim()
            .parse()
            .map_err(|_| bad("i is not a whole number"))?;
        let n = n
            .trim()
            .parse()
            .map_err(|_| bad("N is not a whole number"))?;
        Self::new(i, n).map_err(|e| bad(e.reason))
    }
}
