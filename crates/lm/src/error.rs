//! The crate's single error type, [`LmError`], and its [`Result`] alias.
//!
//! Every variant carries the context a user needs to find the problem: byte offsets into a GGUF
//! file, metadata keys, tensor names, file paths, and for missing model files the command that
//! fetches them.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// Byte offsets (`offset`) are absolute positions in the GGUF byte buffer, counted from its first
/// byte, so `xxd -s OFFSET file.gguf` shows the culprit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LmError {
    /// Fewer bytes were left than a field needs: the file is truncated (or a length field lies).
    #[error(
        "GGUF truncated at byte {offset}: reading {what} needs {needed} bytes, {available} left"
    )]
    Truncated {
        /// Where the read started.
        offset: u64,
        /// What was being read (e.g. "tensor count", "metadata value").
        what: &'static str,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the buffer from `offset`.
        available: u64,
    },

    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: magic is {found:02x?}, expected \"GGUF\" (47 47 55 46)")]
    BadMagic {
        /// The four bytes found at offset 0.
        found: [u8; 4],
    },

    /// The version field names a GGUF version this reader does not support (it reads 2 and 3).
    #[error(
        "unsupported GGUF version {version} (supported: 2, 3; a big-endian file shows a byte-swapped version)"
    )]
    UnsupportedVersion {
        /// The version read at offset 4.
        version: u32,
    },

    /// A count or length field is larger than the bytes left could possibly hold.
    ///
    /// Checked before any allocation, so a corrupt length never turns into a huge allocation.
    #[error(
        "GGUF field at byte {offset}: {what} of {count} cannot fit in the {available} bytes left \
         (each needs at least {min_item_size} bytes)"
    )]
    CountTooLarge {
        /// Where the count/length field was read.
        offset: u64,
        /// What the count counts (e.g. "metadata KV pairs", "string bytes").
        what: &'static str,
        /// The value read.
        count: u64,
        /// Minimal encoded size of one item.
        min_item_size: u64,
        /// Bytes left after the count field.
        available: u64,
    },

    /// A string is not valid UTF-8.
    #[error("GGUF string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: u64,
    },

    /// A metadata value type id outside 0..=12.
    #[error("unknown GGUF metadata value type {type_id} at byte {offset} (key {key:?})")]
    UnknownValueType {
        /// The type id read.
        type_id: u32,
        /// Where it was read.
        offset: u64,
        /// The key whose value (or array element type) it is.
        key: String,
    },

    /// A bool metadata value that is neither 0 nor 1.
    #[error("GGUF bool at byte {offset} (key {key:?}) has value {value}, expected 0 or 1")]
    InvalidBool {
        /// Where the byte was read.
        offset: u64,
        /// The key the value belongs to.
        key: String,
        /// The byte found.
        value: u8,
    },

    /// Arrays nested deeper than [`crate::format::gguf::MAX_ARRAY_NESTING`].
    #[error("GGUF array at byte {offset} (key {key:?}) nests deeper than {max} levels")]
    NestingTooDeep {
        /// Where the too-deep array starts.
        offset: u64,
        /// The key the value belongs to.
        key: String,
        /// The limit.
        max: usize,
    },

    /// Two metadata entries share one key.
    #[error("duplicate GGUF metadata key {key:?} at byte {offset}")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where the second occurrence starts.
        offset: u64,
    },

    /// Two tensors share one name.
    #[error("duplicate GGUF tensor name {name:?} at byte {offset}")]
    DuplicateTensor {
        /// The repeated name.
        name: String,
        /// Where the second tensor info starts.
        offset: u64,
    },

    /// An error inside the file at `path` (a GGUF that does not parse, …).
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        source: Box<LmError>,
    },

    /// An error about one tensor of a file (its data cannot be de-quantised, …).
    #[error("tensor {tensor:?}: {source}")]
    InTensor {
        /// The tensor's name.
        tensor: String,
        /// What is wrong with it.
        source: Box<LmError>,
    },

    /// A tensor with a zero dimension: no model has one, and shapes derived from it would
    /// divide by zero.
    #[error("tensor {tensor:?}: dimensions {dims:?} hold no element")]
    EmptyTensor {
        /// Tensor name.
        tensor: String,
        /// The dimensions read (ggml order).
        dims: Vec<u64>,
    },

    /// `general.alignment` is zero or not a power of two.
    #[error("GGUF general.alignment is {alignment}; it must be a non-zero power of two")]
    BadAlignment {
        /// The value found.
        alignment: u64,
    },

    /// A ggml tensor type id this crate does not know.
    #[error("tensor {tensor:?}: unknown ggml type id {type_id} (info at byte {offset})")]
    UnknownGgmlType {
        /// Tensor name.
        tensor: String,
        /// The type id read.
        type_id: u32,
        /// Where the tensor info starts.
        offset: u64,
    },

    /// A tensor with more than [`crate::format::gguf::MAX_DIMS`] dimensions.
    #[error("tensor {tensor:?}: {n_dims} dimensions (at most {max} allowed)")]
    BadDimCount {
        /// Tensor name.
        tensor: String,
        /// The dimension count read.
        n_dims: u32,
        /// The maximum (ggml's `GGML_MAX_DIMS`).
        max: usize,
    },

    /// The product of a tensor's dimensions (or its byte size) overflows.
    #[error("tensor {tensor:?}: dimensions {dims:?} overflow the element/byte count")]
    DimsOverflow {
        /// Tensor name.
        tensor: String,
        /// The dimensions read.
        dims: Vec<u64>,
    },

    /// A quantised tensor whose row length is not a multiple of its type's block size.
    #[error(
        "tensor {tensor:?}: first dimension {ne0} is not a multiple of the {ggml_type} block size {block_size}"
    )]
    RowNotBlockMultiple {
        /// Tensor name.
        tensor: String,
        /// The ggml type's name.
        ggml_type: &'static str,
        /// The first (fastest-varying) dimension.
        ne0: u64,
        /// Values per block.
        block_size: u64,
    },

    /// A tensor offset that is not a multiple of the file's alignment.
    #[error(
        "tensor {tensor:?}: data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    MisalignedTensor {
        /// Tensor name.
        tensor: String,
        /// Offset relative to the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },

    /// A tensor offset that is not where the previous tensor (padded to the alignment) ends.
    ///
    /// llama.cpp's loader (`gguf_init_from_file_impl`) requires tensors to be stored contiguously in
    /// info order; this reader does the same.
    #[error(
        "tensor {tensor:?}: data offset {offset}, expected {expected} (tensors are stored contiguously)"
    )]
    UnexpectedTensorOffset {
        /// Tensor name.
        tensor: String,
        /// Offset relative to the data section.
        offset: u64,
        /// Where the previous tensor's padded data ends.
        expected: u64,
    },

    /// A tensor's data runs past the end of the buffer.
    #[error(
        "tensor {tensor:?}: data [{start}, {start}+{size}) lies outside the {data_len}-byte data section"
    )]
    TensorOutOfBounds {
        /// Tensor name.
        tensor: String,
        /// Offset relative to the data section.
        start: u64,
        /// Byte size of the tensor.
        size: u64,
        /// Bytes available in the data section.
        data_len: u64,
    },

    /// A metadata key that is required but absent.
    #[error("GGUF metadata key {key:?} is missing")]
    MissingKey {
        /// The key looked up.
        key: String,
    },

    /// A metadata key holding a different type than asked for.
    #[error("GGUF metadata key {key:?} holds {found}, expected {expected}")]
    WrongValueType {
        /// The key looked up.
        key: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the file holds.
        found: String,
    },

    /// A tensor name that is not in the file.
    #[error("GGUF tensor {name:?} not found")]
    TensorNotFound {
        /// The name looked up.
        name: String,
    },

    /// A ggml type that [`crate::format::dequant`] cannot convert to f32.
    #[error("de-quantisation of ggml type {ggml_type} is not supported")]
    UnsupportedDequant {
        /// The type's name.
        ggml_type: &'static str,
    },

    /// A weight whose block type the quantized executor's integer kernels cannot read.
    #[error(
        "tensor {tensor:?} has ggml type {ggml_type}, which the quantized executor cannot run (supported: {supported}); use the f32 engine"
    )]
    UnsupportedQuantizedTensor {
        /// The GGUF tensor name.
        tensor: String,
        /// Its type's name.
        ggml_type: &'static str,
        /// The types that are supported.
        supported: &'static str,
    },

    /// A de-quantisation request whose element count is not a whole number of blocks.
    #[error("{ggml_type}: {n_elements} elements is not a multiple of the block size {block_size}")]
    NotBlockMultiple {
        /// The type's name.
        ggml_type: &'static str,
        /// Elements requested.
        n_elements: usize,
        /// Values per block.
        block_size: usize,
    },

    /// A de-quantisation request whose byte buffer has the wrong length.
    #[error("{ggml_type}: {n_elements} elements need {expected} bytes, got {got}")]
    WrongByteLength {
        /// The type's name.
        ggml_type: &'static str,
        /// Elements requested.
        n_elements: usize,
        /// Bytes the elements need.
        expected: usize,
        /// Bytes given.
        got: usize,
    },

    /// A model file or folder that is not on disk.
    #[error(
        "{model} not found ({detail}); fetch the models with `bash scripts/fetch_models.sh` \
         or point CAI_MODELS_DIR at a folder holding them"
    )]
    ModelNotFound {
        /// Which model (e.g. "SmolLM2-135M-Instruct GGUF").
        model: &'static str,
        /// Where it was looked for.
        detail: String,
    },

    /// An I/O error on a named file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The GGUF tokenizer metadata names a tokenizer this crate cannot build: an unknown
    /// `tokenizer.ggml.model` or `tokenizer.ggml.pre` value.
    #[error("unsupported GGUF tokenizer: {key} = {value:?} (supported: {supported})")]
    UnsupportedTokenizer {
        /// The metadata key (`tokenizer.ggml.model` or `tokenizer.ggml.pre`).
        key: &'static str,
        /// The value found under it.
        value: String,
        /// The values that are supported (for that model type, in the case of `pre`).
        supported: String,
    },

    /// A per-token GGUF tokenizer array (`tokenizer.ggml.scores`, `tokenizer.ggml.token_type`)
    /// whose length differs from that of `tokenizer.ggml.tokens`.
    #[error("GGUF tokenizer metadata: {key} has {len} entries, tokenizer.ggml.tokens has {tokens}")]
    TokenizerLengthMismatch {
        /// The key of the per-token array.
        key: &'static str,
        /// Its length.
        len: usize,
        /// The number of tokens.
        tokens: usize,
    },

    /// A token a helper needs (e.g. Llama 3's `<|eot_id|>`) is not in the tokenizer's vocabulary.
    #[error("token {token:?} is not in the tokenizer's vocabulary (needed for {purpose})")]
    TokenNotInVocabulary {
        /// The token's text.
        token: String,
        /// What it is needed for.
        purpose: &'static str,
    },

    /// The GGUF tokenizer metadata is inconsistent (e.g. arrays of different lengths).
    #[error("invalid GGUF tokenizer metadata: {what}")]
    InvalidTokenizer {
        /// What is wrong.
        what: String,
    },

    /// An error from the `tokenizers` crate.
    #[error("tokenizers error while {context}: {source}")]
    Tokenizers {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A `.safetensors` file whose header or data layout is invalid.
    #[error("invalid safetensors file {path}: {source}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The underlying `safetensors` error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A weight a model needs is not in its safetensors file.
    #[error("weight {name:?} not found in {path}")]
    WeightNotFound {
        /// The file.
        path: PathBuf,
        /// The Hugging Face parameter name.
        name: String,
    },

    /// A weight whose stored shape differs from the one the model's config implies.
    #[error("weight {name:?} in {path} has shape {found:?}, expected {expected:?}")]
    WeightShape {
        /// The file.
        path: PathBuf,
        /// The Hugging Face parameter name.
        name: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape stored in the file.
        found: Vec<usize>,
    },

    /// A weight with a NaN or infinite value — a corrupt or badly converted file. For a
    /// quantized tensor kept in its blocks, `index` is the first value of the first block whose
    /// scale is not finite.
    #[error("weight {name:?} in {path}: value {index} is not finite (NaN or infinite)")]
    NonFiniteWeight {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// Flat index of the first offending value.
        index: usize,
    },

    /// A weight stored in a dtype that is not converted to f32 (only F32, F16 and BF16 are).
    #[error("weight {name:?} in {path} has dtype {dtype}; only F32, F16 and BF16 are supported")]
    UnsupportedWeightDtype {
        /// The file.
        path: PathBuf,
        /// The Hugging Face parameter name.
        name: String,
        /// The stored dtype.
        dtype: String,
    },

    /// The keys of a weights file do not match the model: some it needs are absent, or some in
    /// the file are not used.
    #[error(
        "weights {path} do not match the model: missing {missing:?}, unexpected {unexpected:?}"
    )]
    WeightKeys {
        /// The file.
        path: PathBuf,
        /// Keys the model needs that the file lacks.
        missing: Vec<String>,
        /// Keys in the file the model does not use.
        unexpected: Vec<String>,
    },

    /// A model `config.json` that cannot be read as the model's configuration, or whose values
    /// are inconsistent.
    #[error("invalid model config {path}: {detail}")]
    InvalidModelConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong (the field, or the parser's message).
        detail: String,
    },

    /// A model file of an architecture this crate cannot build.
    #[error("{path}: architecture `{found}` (from {key}) is not supported; supported: {supported}")]
    UnsupportedArchitecture {
        /// The file or directory.
        path: PathBuf,
        /// The key it was read from (`general.architecture`, `model_type`).
        key: &'static str,
        /// The architecture found.
        found: String,
        /// The architectures that are supported, comma-separated.
        supported: String,
    },

    /// An input longer than the model's position table.
    #[error("sequence of {len} tokens exceeds the model's {max} positions")]
    SequenceTooLong {
        /// Tokens in the sequence.
        len: usize,
        /// Positions the model has.
        max: usize,
    },

    /// A token id outside the model's vocabulary.
    #[error("token id {id} is outside the {vocab_size}-token vocabulary")]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },

    /// Reading a tensor's values back from its device failed.
    #[error("reading tensor data back failed: {detail}")]
    TensorRead {
        /// The backend's message.
        detail: String,
    },

    /// Operands of a numeric kernel whose sizes do not fit together.
    #[error("{context}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// The function that was called.
        context: &'static str,
        /// The sizes it needs.
        expected: String,
        /// The sizes it was given.
        got: String,
    },

    /// An expert selector refused a token's router logits at a mixture-of-experts layer.
    #[error("expert selection at layer {layer}: {source}")]
    ExpertSelection {
        /// The layer.
        layer: usize,
        /// The selector's error.
        source: routing_core::RoutingError,
    },

    /// A NaN or infinite value where a numeric kernel needs finite ones.
    #[error("{context}: value {index} is not finite")]
    NonFinite {
        /// The function that was called.
        context: &'static str,
        /// Flat index of the first offending value.
        index: usize,
    },
}

/// The stand-in path of errors raised by code that reads a GGUF header or tensor without knowing
/// the file's path ([`crate::models::gguf_loader::expect_architecture`], a quantized matrix of
/// the wrong rank); [`LmError::metadata_in_file`] replaces it with the real one.
pub(crate) const UNNAMED_GGUF: &str = "gguf";

impl LmError {
    /// An error raised while reading the metadata or tensors of the model file at `path`, made
    /// to name it: one that names only its key ([`LmError::MissingKey`],
    /// [`LmError::WrongValueType`]) inside [`LmError::InFile`]; an
    /// [`LmError::InvalidModelConfig`] or [`LmError::WeightShape`] raised where the path was not
    /// known (its path the stand-in `gguf`) with `path` in its place; any other error as it is
    /// (those of a file's bytes and tensors name the file or the tensor already).
    pub fn metadata_in_file(self, path: &std::path::Path) -> Self {
        let unnamed = |p: &std::path::Path| p == std::path::Path::new(UNNAMED_GGUF);
        match self {
            Self::MissingKey { .. } | Self::WrongValueType { .. } => Self::InFile {
                path: path.to_path_buf(),
                source: Box::new(self),
            },
            Self::InvalidModelConfig { path: p, detail } if unnamed(&p) => {
                Self::InvalidModelConfig {
                    path: path.to_path_buf(),
                    detail,
                }
            }
            Self::WeightShape {
                path: p,
                name,
                expected,
                found,
            } if unnamed(&p) => Self::WeightShape {
                path: path.to_path_buf(),
                name,
                expected,
                found,
            },
            other => other,
        }
    }
}

/// `Result` with [`LmError`].
pub type Result<T, E = LmError> = std::result::Result<T, E>;
