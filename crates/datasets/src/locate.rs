//! Finding the shared real-data folder (`shared/data`, beside the workspace root).
//!
//! The real data sets are never copied into this repository. They live in a folder
//! `shared/data` next to the workspace root (for a checkout at `/work/main` that is
//! `/work/shared/data`), or wherever the environment variable [`DATA_DIR_ENV`] points.

use std::path::{Path, PathBuf};

/// Environment variable that overrides where the shared data folder is.
pub const DATA_DIR_ENV: &str = "CAI_DATA_DIR";

/// The shared data folder, if it can be found.
///
/// Order of lookup:
/// 1. the environment variable [`DATA_DIR_ENV`] (`CAI_DATA_DIR`), when set and non-empty:
///    its value is returned if it is a directory, otherwise `None` (an explicit setting is
///    never silently replaced by a guess);
/// 2. walking up from this crate's manifest folder, the first ancestor `a` for which
///    `a/shared/data` is a directory;
/// 3. the same walk from the current working directory.
pub fn shared_data_dir() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        return p.is_dir().then_some(p);
    }
    // The manifest folder as cargo gives it when running (a test or `cargo run`), else as it
    // was at compile time: a build cache shared between checkouts at different paths keeps
    // binaries whose compile-time path may be another checkout's.
    let runtime = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    runtime
        .as_deref()
        .and_then(find_upwards)
        .or_else(|| find_upwards(manifest))
        .or_else(|| {
            std::env::current_dir()
                .ok()
                .and_then(|cwd| find_upwards(&cwd))
        })
}

/// The first `a/shared/data` that is a directory, for `a` = `start` and its ancestors.
fn find_upwards(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|a| a.join("shared").join("data"))
        .find(|p| p.is_dir())
}

/// The shared data folder for tests that need the real data.
///
/// Returns the folder when it exists. When it does not:
/// * if the environment variable `CI` is set, panics (CI machines always have the data, so
///   its absence there is a configuration error that must not pass as a skipped test);
/// * otherwise prints `skipping: ../shared/data not found` to stderr and returns `None`,
///   so the calling test can return early.
pub fn require_shared_data() -> Option<PathBuf> {
    match shared_data_dir() {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => panic!(
            "shared data folder not found (set {DATA_DIR_ENV} or place it at ../shared/data); \
             required because CI is set"
        ),
        None => {
            eprintln!("skipping: ../shared/data not found (set {DATA_DIR_ENV} to override)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_shared_data_beside_an_ancestor() {
        let root = std::env::temp_dir().join(format!("locate-{}", std::process::id()));
        let deep = root.join("main").join("crates").join("x");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(root.join("shared").join("data")).unwrap();
        assert_eq!(find_upwards(&deep), Some(root.join("shared").join("data")));
        let _ = std::fs::remove_dir_all(&root);
    }
}
