//! Query embeddings, computed once by a sentence encoder and cached on disk.
//!
//! RouteLLM's MF router (Ong et al. 2024, §4.2) embeds every query with a frozen text encoder
//! (OpenAI `text-embedding-3-small` there; the local MiniLM encoder of `lm` here). Embedding
//! the 14,042 RouteLLM MMLU prompts takes minutes on two CPU cores, so embeddings are cached:
//!
//! * [`TextEmbedder`] — anything that maps texts to fixed-width vectors (the MiniLM
//!   [`lm::models::bert::SentenceEncoder`], the model-free [`HashEmbedder`] used by tests and docs);
//! * [`EmbedCache`] — an append-only binary file keyed by [`cache_key`], a 128-bit FNV-1a
//!   hash of the embedding model id and the text;
//! * [`CachedEmbedder`] — an embedder that looks texts up in the cache, computes the missing
//!   ones in chunks (with a [`Progress`] bar on stderr), appends them, and returns them.
//!
//! # File format (version 1, all integers little-endian)
//!
//! | bytes | content |
//! |-------|---------|
//! | 0..8 | magic `MFEMBCAC` |
//! | 8..12 | format version, `u32` = 1 |
//! | 12..16 | embedding width `dim`, `u32` |
//! | 16..20 | length `L` of the model id, `u32` |
//! | 20..20+L | model id, UTF-8 |
//! | then | records of `16 + 4·dim` bytes: key (`u128`), `dim` × `f32` |
//!
//! A file whose length is not the header plus a whole number of records, or whose magic or
//! version is wrong, is [`MfError::CacheCorrupt`]; one written for another model id or width
//! is [`MfError::CacheMismatch`]. Records are only ever appended; one process should write a
//! given file at a time. A key seen twice keeps its first vector.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use datasets::progress::Progress;

use crate::error::{MfError, Result};

/// Magic bytes at the start of a cache file.
pub const CACHE_MAGIC: [u8; 8] = *b"MFEMBCAC";
/// Cache file format version.
pub const CACHE_VERSION: u32 = 1;
/// Model id of the MiniLM encoder as recorded in caches and checkpoints.
pub const MINILM_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Cache id of all-MiniLM-L6-v2 run by the int8 path ([`lm::models::bert::SentenceEncoder::quantized`]).
pub const MINILM_INT8_CACHE_ID: &str = "sentence-transformers/all-MiniLM-L6-v2+int8";

/// Maps texts to fixed-width embedding vectors.
pub trait TextEmbedder {
    /// A stable id of the embedding model: a router trained on its vectors may be served by any
    /// embedder with the same id (checked by [`crate::checkpoint::LoadedRouter::new`]).
    fn model_id(&self) -> &str;
    /// The id that keys cached vectors ([`CachedEmbedder`]): [`Self::model_id`] unless the
    /// embedder computes approximate vectors of that model (an int8 encoder), which must not be
    /// mixed into a cache of exact ones.
    fn cache_id(&self) -> &str {
        self.model_id()
    }
    /// Width of the vectors.
    fn dim(&self) -> usize;
    /// One vector per text, in input order.
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

impl TextEmbedder for lm::models::bert::SentenceEncoder {
    fn model_id(&self) -> &str {
        MINILM_MODEL_ID
    }
    fn cache_id(&self) -> &str {
        if self.is_quantized() {
            MINILM_INT8_CACHE_ID
        } else {
            MINILM_MODEL_ID
        }
    }
    fn dim(&self) -> usize {
        lm::models::bert::SentenceEncoder::dim(self)
    }
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed(texts)?)
    }
}

impl<E: TextEmbedder + ?Sized> TextEmbedder for &E {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn cache_id(&self) -> &str {
        (**self).cache_id()
    }
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        (**self).embed_texts(texts)
    }
}

impl<E: TextEmbedder + ?Sized> TextEmbedder for std::sync::Arc<E> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn cache_id(&self) -> &str {
        (**self).cache_id()
    }
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        (**self).embed_texts(texts)
    }
}

/// A model-free embedder for tests and examples: hashed character trigrams and words,
/// L2-normalised. Texts sharing words get similar vectors; it is not a language model.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dim: usize,
    id: String,
}

impl HashEmbedder {
    /// A hashing embedder of width `dim` (at least 1).
    pub fn new(dim: usize) -> Self {
        let dim = dim.max(1);
        Self {
            dim,
            id: format!("hash-trigram-{dim}"),
        }
    }

    fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        let lower = text.to_lowercase();
        let chars: Vec<char> = format!("  {lower}  ").chars().collect();
        let mut add = |s: &str, w: f32| {
            let h = fnv1a_128(s.as_bytes());
            let i = (h % self.dim as u128) as usize;
            let sign = if (h >> 64) & 1 == 0 { 1.0 } else { -1.0 };
            v[i] += sign * w;
        };
        for t in chars.windows(3) {
            add(&t.iter().collect::<String>(), 1.0);
        }
        for w in lower.split_whitespace() {
            add(w, 2.0);
        }
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            v.iter_mut().for_each(|x| *x /= n);
        }
        v
    }
}

impl TextEmbedder for HashEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

/// A fixed text → vector table behind the [`TextEmbedder`] interface: it embeds exactly the
/// texts it was given and fails with [`MfError::UnknownText`] on any other. Used for
/// [`crate::synthetic`] tasks (whose "embeddings" are made up, not computed from the text)
/// and to serve vectors that were computed once (a cache read) to the text-level router APIs.
#[derive(Debug, Clone)]
pub struct LookupEmbedder {
    id: String,
    dim: usize,
    vectors: HashMap<String, Vec<f32>>,
}

impl LookupEmbedder {
    /// An empty table of `dim`-wide vectors recorded under `model_id`.
    pub fn new(model_id: impl Into<String>, dim: usize) -> Self {
        Self {
            id: model_id.into(),
            dim,
            vectors: HashMap::new(),
        }
    }

    /// A table holding row `i` of `emb` for `texts[i]` (a repeated text keeps its first row).
    pub fn from_matrix(
        model_id: impl Into<String>,
        texts: &[&str],
        emb: &EmbeddingMatrix,
    ) -> Result<Self> {
        if texts.len() != emb.len() {
            return Err(MfError::Shape {
                what: "texts (one per embedding row)".into(),
                expected: emb.len(),
                got: texts.len(),
            });
        }
        let mut e = Self::new(model_id, emb.dim());
        for (i, t) in texts.iter().enumerate() {
            e.insert(t, emb.row(i))?;
        }
        Ok(e)
    }

    /// Adds `text` → `vector` (its width must be [`TextEmbedder::dim`]); a text already held
    /// keeps its vector.
    pub fn insert(&mut self, text: &str, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dim {
            return Err(MfError::Shape {
                what: format!("vector of lookup embedder `{}`", self.id),
                expected: self.dim,
                got: vector.len(),
            });
        }
        self.vectors
            .entry(text.to_string())
            .or_insert_with(|| vector.to_vec());
        Ok(())
    }

    /// Number of texts held.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Whether no text is held.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }
}

impl TextEmbedder for LookupEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        texts
            .iter()
            .map(|t| {
                self.vectors
                    .get(*t)
                    .cloned()
                    .ok_or_else(|| MfError::UnknownText {
                        model_id: self.id.clone(),
                        text: t.chars().take(60).collect(),
                    })
            })
            .collect()
    }
}

/// 128-bit FNV-1a of `bytes` (offset basis and prime from the FNV reference).
pub fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let mut h = OFFSET;
    for &b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// The cache key of `text` under embedding model `model_id`: FNV-1a-128 of the model id's
/// bytes, a `0xFF` separator (never valid UTF-8, so no id/text split is ambiguous), the
/// text's bytes.
pub fn cache_key(model_id: &str, text: &str) -> u128 {
    let mut bytes = Vec::with_capacity(model_id.len() + 1 + text.len());
    bytes.extend_from_slice(model_id.as_bytes());
    bytes.push(0xFF);
    bytes.extend_from_slice(text.as_bytes());
    fnv1a_128(&bytes)
}

/// A row-major matrix of embeddings (one row per prompt).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingMatrix {
    dim: usize,
    data: Vec<f32>,
}

impl EmbeddingMatrix {
    /// Wraps row-major data; its length must be a multiple of `dim` (> 0).
    pub fn new(dim: usize, data: Vec<f32>) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(MfError::Shape {
                what: format!("embedding matrix of width {dim}"),
                expected: dim.max(1) * (data.len() / dim.max(1)),
                got: data.len(),
            });
        }
        Ok(Self { dim, data })
    }

    /// Stacks rows of equal width.
    pub fn from_rows(dim: usize, rows: &[Vec<f32>]) -> Result<Self> {
        let mut data = Vec::with_capacity(rows.len() * dim);
        for (i, r) in rows.iter().enumerate() {
            if r.len() != dim {
                return Err(MfError::Shape {
                    what: format!("embedding row {i}"),
                    expected: dim,
                    got: r.len(),
                });
            }
            data.extend_from_slice(r);
        }
        Self::new(dim, data)
    }

    /// Width of a row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The row-major data.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The given rows, in order.
    pub fn take_rows(&self, rows: &[usize]) -> Self {
        let mut data = Vec::with_capacity(rows.len() * self.dim);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        Self {
            dim: self.dim,
            data,
        }
    }
}

/// An on-disk embedding cache (see the module docs for the format).
#[derive(Debug)]
pub struct EmbedCache {
    path: PathBuf,
    model_id: String,
    dim: usize,
    index: HashMap<u128, usize>,
    data: Vec<f32>,
    /// Keys of rows not yet written, in row order (rows `flushed..`).
    pending: Vec<u128>,
    flushed: usize,
}

impl EmbedCache {
    /// Opens the cache at `path` for `model_id` and width `dim`, creating an empty one (and
    /// its parent folder) when the file does not exist.
    ///
    /// # Errors
    /// [`MfError::CacheCorrupt`] for a malformed file, [`MfError::CacheMismatch`] when the file
    /// was written for another model id or width, [`MfError::Io`].
    pub fn open(path: impl AsRef<Path>, model_id: &str, dim: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if dim == 0 {
            return Err(MfError::param("dim", "embedding width must be > 0"));
        }
        let mut cache = Self {
            path: path.clone(),
            model_id: model_id.to_string(),
            dim,
            index: HashMap::new(),
            data: Vec::new(),
            pending: Vec::new(),
            flushed: 0,
        };
        if !path.exists() {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| MfError::io(parent, e))?;
            }
            let mut f = std::fs::File::create(&path).map_err(|e| MfError::io(&path, e))?;
            f.write_all(&cache.header())
                .map_err(|e| MfError::io(&path, e))?;
            return Ok(cache);
        }
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| MfError::io(&path, e))?;
        let corrupt = |reason: String| MfError::CacheCorrupt {
            path: path.clone(),
            reason,
        };
        if bytes.len() < 20 || bytes[..8] != CACHE_MAGIC {
            return Err(corrupt(
                "not an mf-router embedding cache (bad magic)".into(),
            ));
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let version = u32_at(8);
        if version != CACHE_VERSION {
            return Err(corrupt(format!(
                "format version {version}, this build reads {CACHE_VERSION}"
            )));
        }
        let file_dim = u32_at(12) as usize;
        let id_len = u32_at(16) as usize;
        let header_len = 20 + id_len;
        if bytes.len() < header_len {
            return Err(corrupt("truncated header".into()));
        }
        let file_id = std::str::from_utf8(&bytes[20..header_len])
            .map_err(|_| corrupt("model id is not UTF-8".into()))?;
        if file_id != model_id {
            return Err(MfError::CacheMismatch {
                path,
                field: "model id",
                expected: model_id.to_string(),
                found: file_id.to_string(),
            });
        }
        if file_dim != dim {
            return Err(MfError::CacheMismatch {
                path,
                field: "dim",
                expected: dim.to_string(),
                found: file_dim.to_string(),
            });
        }
        let rec = 16 + 4 * dim;
        let body = &bytes[header_len..];
        if body.len() % rec != 0 {
            return Err(corrupt(format!(
                "{} trailing bytes after {} whole records (truncated write?)",
                body.len() % rec,
                body.len() / rec
            )));
        }
        for chunk in body.chunks_exact(rec) {
            let mut k = [0u8; 16];
            k.copy_from_slice(&chunk[..16]);
            let key = u128::from_le_bytes(k);
            if cache.index.contains_key(&key) {
                continue;
            }
            cache.index.insert(key, cache.data.len() / dim);
            cache.data.extend(
                chunk[16..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        cache.flushed = cache.data.len() / dim;
        Ok(cache)
    }

    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(20 + self.model_id.len());
        h.extend_from_slice(&CACHE_MAGIC);
        h.extend_from_slice(&CACHE_VERSION.to_le_bytes());
        h.extend_from_slice(&(self.dim as u32).to_le_bytes());
        h.extend_from_slice(&(self.model_id.len() as u32).to_le_bytes());
        h.extend_from_slice(self.model_id.as_bytes());
        h
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The embedding model id the cache is keyed by.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of cached vectors (written or pending).
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The cached vector of `text`, if any.
    pub fn get(&self, text: &str) -> Option<&[f32]> {
        let key = cache_key(&self.model_id, text);
        self.index
            .get(&key)
            .map(|&r| &self.data[r * self.dim..(r + 1) * self.dim])
    }

    /// Adds the vector of `text` (kept in memory until [`Self::flush`]). A text already cached
    /// keeps its first vector.
    pub fn insert(&mut self, text: &str, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dim {
            return Err(MfError::Shape {
                what: "embedding vector".into(),
                expected: self.dim,
                got: vector.len(),
            });
        }
        let key = cache_key(&self.model_id, text);
        if self.index.contains_key(&key) {
            return Ok(());
        }
        self.index.insert(key, self.len());
        self.data.extend_from_slice(vector);
        self.pending.push(key);
        Ok(())
    }

    /// Appends the pending vectors to the file in one write.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(self.pending.len() * (16 + 4 * self.dim));
        for (i, key) in self.pending.iter().enumerate() {
            let r = self.flushed + i;
            buf.extend_from_slice(&key.to_le_bytes());
            for x in &self.data[r * self.dim..(r + 1) * self.dim] {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| MfError::io(&self.path, e))?;
        f.write_all(&buf).map_err(|e| MfError::io(&self.path, e))?;
        self.flushed += self.pending.len();
        self.pending.clear();
        Ok(())
    }
}

/// An embedder backed by an [`EmbedCache`]: cached texts are looked up, the rest computed
/// by the inner embedder in chunks, appended to the file after each chunk, and returned.
#[derive(Debug)]
pub struct CachedEmbedder<E> {
    inner: E,
    cache: Mutex<EmbedCache>,
    chunk: usize,
    progress_min: usize,
}

impl<E: TextEmbedder> CachedEmbedder<E> {
    /// Opens (or creates) the cache at `path` for `inner`'s cache id
    /// ([`TextEmbedder::cache_id`]) and width.
    pub fn open(inner: E, path: impl AsRef<Path>) -> Result<Self> {
        let cache = EmbedCache::open(path, inner.cache_id(), inner.dim())?;
        Ok(Self {
            inner,
            cache: Mutex::new(cache),
            chunk: 256,
            progress_min: 64,
        })
    }

    /// Texts computed per chunk (and per cache append); default 256.
    pub fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    /// Shows the progress bar only when at least `n` texts must be computed (default 64;
    /// `usize::MAX` disables it).
    pub fn with_progress_min(mut self, n: usize) -> Self {
        self.progress_min = n;
        self
    }

    /// The inner embedder.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// Number of cached vectors.
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EmbedCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Embeds `texts` into a matrix (row `i` = text `i`).
    pub fn embed_matrix(&self, texts: &[&str]) -> Result<EmbeddingMatrix> {
        let rows = self.embed_texts(texts)?;
        EmbeddingMatrix::from_rows(self.inner.dim(), &rows)
    }
}

impl<E: TextEmbedder> TextEmbedder for CachedEmbedder<E> {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn cache_id(&self) -> &str {
        self.inner.cache_id()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        // Distinct texts not yet cached, in first-seen order.
        let missing: Vec<&str> = {
            let cache = self.lock();
            let mut seen = std::collections::HashSet::new();
            texts
                .iter()
                .copied()
                .filter(|t| cache.get(t).is_none() && seen.insert(*t))
                .collect()
        };
        if !missing.is_empty() {
            let mut bar = Progress::new(
                format!("embedding ({})", self.inner.cache_id()),
                missing.len(),
                missing.len() >= self.progress_min,
            );
            for chunk in missing.chunks(self.chunk) {
                let vectors = self.inner.embed_texts(chunk)?;
                let mut cache = self.lock();
                for (t, v) in chunk.iter().zip(&vectors) {
                    cache.insert(t, v)?;
                }
                cache.flush()?;
                drop(cache);
                bar.advance(chunk.len());
            }
            if missing.len() >= self.progress_min {
                bar.finish();
            }
        }
        let cache = self.lock();
        texts
            .iter()
            .map(|t| {
                cache
                    .get(t)
                    .map(<[f32]>::to_vec)
                    .ok_or_else(|| MfError::Empty {
                        what: format!("cache entry for a text just embedded ({} chars)", t.len()),
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vector() {
        // FNV-1a-128 of the empty string is the offset basis; of "a" a published value.
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    }

    #[test]
    fn hash_embedder_is_unit_length_and_deterministic() {
        let e = HashEmbedder::new(32);
        let a = e.embed_texts(&["hello world", "hello world"]).unwrap();
        assert_eq!(a[0], a[1]);
        let n: f32 = a[0].iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
}
