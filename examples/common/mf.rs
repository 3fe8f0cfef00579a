//! The MF studies' source and encoder, as `routellm_mf`, `code_router` and `reproduce` pick
//! them.

use std::path::PathBuf;

use mf_router::study::Source;

/// The study's source from the flags: synthetic (`n_items` items, seed 0), a data folder, or
/// the shared data folder.
pub fn source(synthetic: bool, data: Option<PathBuf>, n_items: usize) -> Source {
    match (synthetic, data) {
        (true, _) => Source::Synthetic { seed: 0, n_items },
        (false, Some(dir)) => Source::Data(dir),
        (false, None) => Source::SharedData,
    }
}

/// MiniLM on the CPU for a real source, `None` for the synthetic one. A missing data folder
/// fails first, before the encoder is loaded.
pub fn minilm(
    source: &Source,
) -> Result<Option<lm::models::bert::SentenceEncoder>, Box<dyn std::error::Error + Send + Sync>> {
    source.data_dir()?;
    if source.is_synthetic() {
        return Ok(None);
    }
    eprintln!("loading MiniLM …");
    Ok(Some(lm::models::bert::SentenceEncoder::from_dir(
        lm::locate::minilm_dir()?,
        &burn::tensor::Device::flex(),
    )?))
}
