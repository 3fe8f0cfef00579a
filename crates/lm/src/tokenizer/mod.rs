//! Tokenizers: `tokenizer.json` files, and tokenizers rebuilt from GGUF metadata (GPT-2-style
//! byte-level BPE and SentencePiece BPE), plus the Llama 3 chat format.
//!
//! GGUF files carry their tokenizer as metadata (ggml's `docs/gguf.md`, "Tokenizer"; read by
//! llama.cpp's `llama_vocab::impl::load` in `src/llama-vocab.cpp`):
//!
//! | key | type | use here |
//! |-----|------|----------|
//! | `tokenizer.ggml.model` | string | `"gpt2"` (byte-level BPE) or `"llama"` (SentencePiece BPE) |
//! | `tokenizer.ggml.pre` | string | selects the pre-tokenizer (table below) |
//! | `tokenizer.ggml.tokens` | array\<string\> | the vocabulary; id = index |
//! | `tokenizer.ggml.scores` | array\<f32\> | `llama` only, required: the merge priorities |
//! | `tokenizer.ggml.merges` | array\<string\> | BPE merges `"a b"`, highest priority first (required for `gpt2`; for `llama` used when present, else derived from the scores) |
//! | `tokenizer.ggml.token_type` | array\<i32\> | 3 = control, 4 = user-defined: become added tokens |
//! | `tokenizer.ggml.bos_token_id` etc. | u32 | BOS/EOS/unknown/padding ids ([`GgufSpecialTokens`]) |
//! | `tokenizer.ggml.add_bos_token` / `add_eos_token` | bool | a post-processor adding them (absent: llama.cpp's default, below) |
//! | `tokenizer.ggml.add_space_prefix` | bool | a leading space (`gpt2`: byte-level `add_prefix_space`; `llama`: a `▁` prepended); absent: false for `gpt2`, true for `llama` |
//!
//! Supported models and pre-tokenizers, matching what llama.cpp assigns to each
//! `tokenizer.ggml.pre` value:
//!
//! | `tokenizer.ggml.model` | `tokenizer.ggml.pre` | tokenizer | BOS when `add_bos_token` is absent |
//! |------|----------------------|---------------|-----|
//! | `gpt2` | `smollm`, `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`, `minerva-7b` | single digits, then GPT-2 byte-level BPE | no |
//! | `gpt2` | `gpt-2` (also when absent), `mpt`, `olmo`, `jais`, `trillion` | GPT-2 byte-level BPE | no |
//! | `gpt2` | `llama-bpe`, `llama3`, `llama-v3`, `falcon3`, `falcon-h1`, `pixtral`, `midm-2.0`, `lfm2`, `jina-v5-nano` | Llama 3: split by [`LLAMA3_PRE_TOKENIZER_REGEX`], then byte-level BPE without its own regex; a word that is itself a token is not merged (llama.cpp's `ignore_merges`) | yes |
//! | `llama` | `default` (or absent) | SentencePiece BPE (Llama 2, Gemma), see below | yes |
//!
//! Other values give [`LmError::UnsupportedTokenizer`] rather than a silently different
//! tokenisation. Control tokens are added as *special* tokens, so, as in Hugging Face
//! `tokenizers`, text like `<|im_start|>` is matched as one token even when encoding without
//! special tokens (which only skips the post-processor).
//!
//! # SentencePiece BPE (`tokenizer.ggml.model = "llama"`)
//!
//! Built the way Hugging Face transformers converts such a GGUF file (`GGUFLlamaConverter`,
//! `GGUFTokenizerSkeleton`), which is what the Gemma 3 golden ids were made with:
//! - merges, when the file has none, are derived from the vocabulary: every split of a token into
//!   two pieces that are both tokens is a merge with that token's score; the splits of one token
//!   are ordered by the pieces' scores (left, then right) descending, and all merges by score
//!   descending, ties kept in vocabulary order ([`spm_merges_from_scores`]);
//! - a BPE model with byte fallback (`<0xNN>` tokens for characters outside the vocabulary) and
//!   fused unknowns;
//! - a normalizer replacing `" "` with `"▁"`, preceded by prepending `"▁"` when
//!   `add_space_prefix` is true (per piece of text between added tokens, as in transformers);
//! - no pre-tokenizer, so whitespace takes part in merges (`▁the`);
//! - a decoder replacing `"▁"` with `" "`, turning `<0xNN>` runs back into UTF-8 and fusing, then
//!   stripping the one leading space when a prefix was prepended;
//! - control and user-defined tokens as added tokens matched in the raw text (Gemma's runs of
//!   spaces, newlines and tabs, and its HTML tags, are user-defined), as llama.cpp and
//!   SentencePiece treat them.
//!
//! # Llama 3 chat format
//!
//! [`llama3_chat_prompt`] renders [`ChatMessage`]s the way Llama 3's chat template does, and
//! [`llama3_stop_ids`] gives the ids generation stops at (`<|eot_id|>`, `<|end_of_text|>`).

mod chat;

pub use chat::{
    ChatFormat, ChatMessage, LLAMA3_BEGIN_OF_TEXT, LLAMA3_END_HEADER, LLAMA3_END_OF_TEXT,
    LLAMA3_EOT, LLAMA3_START_HEADER, llama3_chat_prompt, llama3_stop_ids,
};

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BPE, Merges, Vocab};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior,
    Tokenizer,
};

use crate::error::{LmError, Result};
use crate::format::gguf::GgufHeader;

/// llama.cpp's token type for control tokens (`LLAMA_TOKEN_TYPE_CONTROL`).
pub const TOKEN_TYPE_CONTROL: i32 = 3;
/// llama.cpp's token type for user-defined tokens (`LLAMA_TOKEN_TYPE_USER_DEFINED`).
pub const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// The pre-tokenizer regex of Llama 3 (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_LLAMA3`, the `Split`
/// pattern of Llama 3's `tokenizer.json`): contractions, letter runs with one leading non-letter,
/// digit runs of at most three, punctuation runs, newlines, other whitespace.
pub const LLAMA3_PRE_TOKENIZER_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const MODEL_KEY: &str = "tokenizer.ggml.model";
const PRE_KEY: &str = "tokenizer.ggml.pre";
const TOKENS_KEY: &str = "tokenizer.ggml.tokens";
const SCORES_KEY: &str = "tokenizer.ggml.scores";
const MERGES_KEY: &str = "tokenizer.ggml.merges";
const TOKEN_TYPE_KEY: &str = "tokenizer.ggml.token_type";
const ADD_SPACE_PREFIX_KEY: &str = "tokenizer.ggml.add_space_prefix";

const SMOLLM_PRES: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva-7b",
];
const GPT2_PRES: &[&str] = &["gpt-2", "mpt", "olmo", "jais", "trillion"];
const LLAMA3_PRES: &[&str] = &[
    "llama-bpe",
    "llama3",
    "llama-v3",
    "falcon3",
    "falcon-h1",
    "pixtral",
    "midm-2.0",
    "lfm2",
    "jina-v5-nano",
];

/// SentencePiece's word-boundary marker (U+2581), which stands for a space.
const SPM_SPACE: &str = "\u{2581}";

/// The tokens a tokenizer's post-processor puts before every text (e.g. Llama 3's
/// `<|begin_of_text|>`; empty for SmolLM2): the encoding of `""` with special tokens. Scorers
/// prepend it to a context, the way the harness's tokenisation does.
pub fn special_prefix(tokenizer: &Tokenizer) -> Vec<u32> {
    tokenizer
        .encode("", true)
        .map(|e| e.get_ids().to_vec())
        .unwrap_or_default()
}

/// Loads a Hugging Face `tokenizer.json`.
///
/// # Errors
/// [`LmError::Tokenizers`] (inside [`LmError::InFile`], naming the file) when the file cannot
/// be read or parsed.
pub fn load_tokenizer_json(path: impl AsRef<Path>) -> Result<Tokenizer> {
    let path = path.as_ref();
    Tokenizer::from_file(path).map_err(|source| LmError::InFile {
        path: path.to_path_buf(),
        source: Box::new(LmError::Tokenizers {
            context: "loading tokenizer.json",
            source,
        }),
    })
}

/// Special token ids stored in GGUF metadata (`tokenizer.ggml.*_token_id`); absent keys are
/// `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GgufSpecialTokens {
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unknown: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub padding: Option<u32>,
}

impl GgufSpecialTokens {
    /// Reads the ids from `header`.
    ///
    /// # Errors
    /// [`LmError::WrongValueType`] when a key holds something other than an integer in u32 range.
    pub fn from_gguf(header: &GgufHeader) -> Result<Self> {
        let id = |key: &str| -> Result<Option<u32>> {
            if header.contains_key(key) {
                header.get_u32(key).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(Self {
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            unknown: id("tokenizer.ggml.unknown_token_id")?,
            padding: id("tokenizer.ggml.padding_token_id")?,
        })
    }
}

fn optional_bool(header: &GgufHeader, key: &str, default: bool) -> Result<bool> {
    if header.contains_key(key) {
        header.get_bool(key)
    } else {
        Ok(default)
    }
}

fn tokenizers_error<E>(context: &'static str) -> impl Fn(E) -> LmError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |source| LmError::Tokenizers {
        context,
        source: source.into(),
    }
}

/// The metadata both tokenizer models share: tokens, token types and special ids, checked
/// against each other.
struct CommonMetadata<'h> {
    tokens: &'h [String],
    /// Empty when the file has no `tokenizer.ggml.token_type`.
    token_types: &'h [i32],
    specials: GgufSpecialTokens,
}

impl<'h> CommonMetadata<'h> {
    fn read(header: &'h GgufHeader) -> Result<Self> {
        let tokens = header.get_str_array(TOKENS_KEY)?;
        if u32::try_from(tokens.len()).is_err() {
            return Err(LmError::InvalidTokenizer {
                what: format!("{} tokens exceed the u32 id range", tokens.len()),
            });
        }
        let token_types = if header.contains_key(TOKEN_TYPE_KEY) {
            let types = header.get_i32_array(TOKEN_TYPE_KEY)?;
            check_len(TOKEN_TYPE_KEY, types.len(), tokens.len())?;
            types
        } else {
            &[]
        };
        let specials = GgufSpecialTokens::from_gguf(header)?;
        let this = Self {
            tokens,
            token_types,
            specials,
        };
        this.token(specials.bos, "tokenizer.ggml.bos_token_id")?;
        this.token(specials.eos, "tokenizer.ggml.eos_token_id")?;
        this.token(specials.unknown, "tokenizer.ggml.unknown_token_id")?;
        this.token(specials.padding, "tokenizer.ggml.padding_token_id")?;
        Ok(this)
    }

    /// The text of token `id`, checked to be in the vocabulary.
    fn token(&self, id: Option<u32>, key: &str) -> Result<Option<&'h String>> {
        let tokens = self.tokens;
        id.map(|id| {
            tokens
                .get(id as usize)
                .ok_or_else(|| LmError::InvalidTokenizer {
                    what: format!(
                        "{key} = {id} is outside the {}-token vocabulary",
                        tokens.len()
                    ),
                })
        })
        .transpose()
    }

    /// Vocabulary: id = index. A repeated string keeps its first id.
    fn vocab(&self) -> Vocab {
        let mut vocab = Vocab::with_capacity(self.tokens.len());
        for (id, token) in (0u32..).zip(self.tokens) {
            vocab.entry(token.clone()).or_insert(id);
        }
        vocab
    }

    /// Control tokens as special added tokens, user-defined ones as plain added tokens.
    /// `normalized` says whether they are matched in the normalized text rather than the raw one.
    fn add_added_tokens(&self, tokenizer: &mut Tokenizer, normalized: bool) -> Result<()> {
        let added: Vec<AddedToken> = self
            .tokens
            .iter()
            .zip(self.token_types)
            .filter(|&(_, &t)| t == TOKEN_TYPE_CONTROL || t == TOKEN_TYPE_USER_DEFINED)
            .map(|(token, &t)| {
                let token = AddedToken::from(token.clone(), t == TOKEN_TYPE_CONTROL);
                if normalized {
                    token
                } else {
                    token.normalized(false)
                }
            })
            .collect();
        tokenizer
            .add_special_tokens(added)
            .map_err(tokenizers_error("adding control and user-defined tokens"))?;
        Ok(())
    }

    /// A post-processor adding BOS/EOS per `tokenizer.ggml.add_{bos,eos}_token` (absent:
    /// `default_add_bos`, and no EOS), or `None` when neither is added.
    fn post_processor(
        &self,
        header: &GgufHeader,
        default_add_bos: bool,
    ) -> Result<Option<TemplateProcessing>> {
        let add_bos = optional_bool(header, "tokenizer.ggml.add_bos_token", default_add_bos)?;
        let add_eos = optional_bool(header, "tokenizer.ggml.add_eos_token", false)?;
        let bos = self.token(self.specials.bos, "tokenizer.ggml.bos_token_id")?;
        let eos = self.token(self.specials.eos, "tokenizer.ggml.eos_token_id")?;
        let mut template = String::new();
        let mut template_tokens = Vec::new();
        let missing = |key: &str| LmError::InvalidTokenizer {
            what: format!(
                "tokenizer.ggml.add_{key}_token is true (or defaults to true) but \
                 tokenizer.ggml.{key}_token_id is absent"
            ),
        };
        if add_bos {
            let (token, id) = bos.zip(self.specials.bos).ok_or_else(|| missing("bos"))?;
            template.push_str(&format!("{token}:0 "));
            template_tokens.push((token.clone(), id));
        }
        template.push_str("$A:0");
        if add_eos {
            let (token, id) = eos.zip(self.specials.eos).ok_or_else(|| missing("eos"))?;
            template.push_str(&format!(" {token}:0"));
            if !template_tokens.iter().any(|(t, _)| t == token) {
                template_tokens.push((token.clone(), id));
            }
        }
        if !(add_bos || add_eos) {
            return Ok(None);
        }
        let processor = TemplateProcessing::builder()
            .try_single(template.as_str())
            .map_err(|e| LmError::InvalidTokenizer {
                what: format!("post-processor template {template:?}: {e}"),
            })?
            .special_tokens(template_tokens)
            .build()
            .map_err(|e| LmError::InvalidTokenizer {
                what: format!("post-processor: {e}"),
            })?;
        Ok(Some(processor))
    }
}

fn check_len(key: &'static str, len: usize, tokens: usize) -> Result<()> {
    if len == tokens {
        Ok(())
    } else {
        Err(LmError::TokenizerLengthMismatch { key, len, tokens })
    }
}

/// Parses `tokenizer.ggml.merges`: `"left right"`, split (as llama.cpp does) at the first space
/// after the first character.
fn parse_merges(merges_raw: &[String]) -> Result<Merges> {
    let mut merges: Merges = Vec::with_capacity(merges_raw.len());
    for (i, m) in merges_raw.iter().enumerate() {
        let split = m
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == ' ')
            .map(|(at, _)| (&m[..at], &m[at + 1..]));
        let Some((left, right)) = split else {
            return Err(LmError::InvalidTokenizer {
                what: format!("{MERGES_KEY}[{i}] = {m:?} has no space separating two tokens"),
            });
        };
        merges.push((left.to_string(), right.to_string()));
    }
    Ok(merges)
}

fn pre_value(header: &GgufHeader) -> Result<Option<&str>> {
    if header.contains_key(PRE_KEY) {
        header.get_str(PRE_KEY).map(Some)
    } else {
        Ok(None)
    }
}

/// Builds a `tokenizers::Tokenizer` from the tokenizer in a GGUF file's metadata: GPT-2-style
/// byte-level BPE (`tokenizer.ggml.model = "gpt2"`, with the pre-tokenizers of the module docs)
/// or SentencePiece BPE (`"llama"`, e.g. Llama 2 and Gemma).
///
/// # Errors
/// - [`LmError::MissingKey`] / [`LmError::WrongValueType`] for absent or mistyped keys
///   (`tokenizer.ggml.scores` is required for `llama`, `tokenizer.ggml.merges` for `gpt2`);
/// - [`LmError::UnsupportedTokenizer`] naming `tokenizer.ggml.model` or `tokenizer.ggml.pre`
///   for values not in the module docs' table;
/// - [`LmError::TokenizerLengthMismatch`] when `tokenizer.ggml.scores` or
///   `tokenizer.ggml.token_type` has a different length than the tokens;
/// - [`LmError::InvalidTokenizer`] for other inconsistent metadata (merges without a space,
///   special ids out of range, NaN scores, BOS/EOS to add but no id);
/// - [`LmError::Tokenizers`] when `tokenizers` rejects the BPE model (e.g. a merge producing a
///   token that is not in the vocabulary).
pub fn tokenizer_from_gguf(header: &GgufHeader) -> Result<Tokenizer> {
    let model = header.get_str(MODEL_KEY)?;
    match model {
        "gpt2" => gpt2_from_gguf(header),
        "llama" => spm_from_gguf(header),
        other => Err(LmError::UnsupportedTokenizer {
            key: MODEL_KEY,
            value: other.to_string(),
            supported: "\"gpt2\" (byte-level BPE), \"llama\" (SentencePiece BPE)".to_string(),
        }),
    }
}

/// How a `gpt2` file's `tokenizer.ggml.pre` value tokenizes.
struct BytePre {
    pre_tokenizer: PreTokenizerWrapper,
    /// Whether a pre-token that is itself in the vocabulary skips the merges.
    ignore_merges: bool,
    /// llama.cpp's `add_bos` when `tokenizer.ggml.add_bos_token` is absent.
    default_add_bos: bool,
}

/// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value (see the module docs).
fn byte_level_pre(pre: &str, add_prefix_space: bool) -> Result<BytePre> {
    let plain = |pre_tokenizer: PreTokenizerWrapper| BytePre {
        pre_tokenizer,
        ignore_merges: false,
        default_add_bos: false,
    };
    if SMOLLM_PRES.contains(&pre) {
        let byte_level = ByteLevel::new(add_prefix_space, true, true);
        Ok(plain(
            Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
        ))
    } else if GPT2_PRES.contains(&pre) {
        Ok(plain(ByteLevel::new(add_prefix_space, true, true).into()))
    } else if LLAMA3_PRES.contains(&pre) {
        let split = Split::new(
            SplitPattern::Regex(LLAMA3_PRE_TOKENIZER_REGEX.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(tokenizers_error(
            "compiling the Llama 3 pre-tokenizer regex",
        ))?;
        let byte_level = ByteLevel::new(add_prefix_space, true, false);
        Ok(BytePre {
            pre_tokenizer: Sequence::new(vec![split.into(), byte_level.into()]).into(),
            ignore_merges: true,
            default_add_bos: true,
        })
    } else {
        let supported = [SMOLLM_PRES, GPT2_PRES, LLAMA3_PRES]
            .concat()
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(LmError::UnsupportedTokenizer {
            key: PRE_KEY,
            value: pre.to_string(),
            supported: format!("for tokenizer.ggml.model = \"gpt2\": {supported}"),
        })
    }
}

/// `tokenizer.ggml.model = "gpt2"`: byte-level BPE.
fn gpt2_from_gguf(header: &GgufHeader) -> Result<Tokenizer> {
    let meta = CommonMetadata::read(header)?;
    let pre = pre_value(header)?.unwrap_or("gpt-2");
    let add_prefix_space = optional_bool(header, ADD_SPACE_PREFIX_KEY, false)?;
    let pre = byte_level_pre(pre, add_prefix_space)?;
    let merges = parse_merges(header.get_str_array(MERGES_KEY)?)?;
    let bpe = BPE::builder()
        .vocab_and_merges(meta.vocab(), merges)
        .ignore_merges(pre.ignore_merges)
        .build()
        .map_err(tokenizers_error(
            "building the BPE model from GGUF tokens and merges",
        ))?;

    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre.pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    meta.add_added_tokens(&mut tokenizer, true)?;
    if let Some(processor) = meta.post_processor(header, pre.default_add_bos)? {
        tokenizer.with_post_processor(Some(processor));
    }
    Ok(tokenizer)
}

/// `tokenizer.ggml.model = "llama"`: SentencePiece BPE (see the module docs).
fn spm_from_gguf(header: &GgufHeader) -> Result<Tokenizer> {
    let meta = CommonMetadata::read(header)?;
    match pre_value(header)? {
        None | Some("default") => {}
        Some(other) => {
            return Err(LmError::UnsupportedTokenizer {
                key: PRE_KEY,
                value: other.to_string(),
                supported: "for tokenizer.ggml.model = \"llama\": \"default\" (or absent)"
                    .to_string(),
            });
        }
    }
    let scores = header.get_f32_array(SCORES_KEY)?;
    check_len(SCORES_KEY, scores.len(), meta.tokens.len())?;
    let merges = if header.contains_key(MERGES_KEY) {
        parse_merges(header.get_str_array(MERGES_KEY)?)?
    } else {
        spm_merges_from_scores(meta.tokens, scores)?
    };
    let mut builder = BPE::builder()
        .vocab_and_merges(meta.vocab(), merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = meta.token(meta.specials.unknown, "tokenizer.ggml.unknown_token_id")? {
        builder = builder.unk_token(unk.clone());
    }
    let bpe = builder.build().map_err(tokenizers_error(
        "building the SentencePiece BPE model from GGUF tokens and scores",
    ))?;

    let add_space_prefix = optional_bool(header, ADD_SPACE_PREFIX_KEY, true)?;
    let replace = |from: &str, to: &str| {
        Replace::new(from, to).map_err(tokenizers_error("building a Replace normalizer"))
    };
    let to_marker: NormalizerWrapper = replace(" ", SPM_SPACE)?.into();
    let normalizer: NormalizerWrapper = if add_space_prefix {
        NormalizerSequence::new(vec![Prepend::new(SPM_SPACE.to_string()).into(), to_marker]).into()
    } else {
        to_marker
    };
    let mut decoders: Vec<DecoderWrapper> = vec![
        replace(SPM_SPACE, " ")?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if add_space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }

    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer
        .with_normalizer(Some(normalizer))
        .map_err(tokenizers_error("setting the SentencePiece normalizer"))?;
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    meta.add_added_tokens(&mut tokenizer, false)?;
    if let Some(processor) = meta.post_processor(header, true)? {
        tokenizer.with_post_processor(Some(processor));
    }
    Ok(tokenizer)
}

/// Derives SentencePiece BPE merges from a vocabulary and its scores, as Hugging Face
/// transformers does for GGUF files without `tokenizer.ggml.merges` (`GGUFTokenizerSkeleton`).
///
/// Every split of a token into two pieces that are both tokens is a merge whose priority is the
/// token's score. The merges of one token are ordered by the pieces' scores (left piece first,
/// then right) descending; all merges are then ordered by priority descending, a stable sort, so
/// ties keep vocabulary order. A string repeated in `tokens` counts once, at its first id. Scores
/// of `-0.0` and `0.0` are equal, as in Python.
///
/// Runs in time linear in the total length of the tokens (one hash lookup per split) plus the
/// sort of the merges: about half a million merges for Gemma 3's 262,144 tokens.
///
/// # Errors
/// [`LmError::TokenizerLengthMismatch`] when `scores` and `tokens` differ in length;
/// [`LmError::InvalidTokenizer`] for a NaN score.
pub fn spm_merges_from_scores(tokens: &[String], scores: &[f32]) -> Result<Merges> {
    check_len(SCORES_KEY, scores.len(), tokens.len())?;
    if let Some(i) = scores.iter().position(|s| s.is_nan()) {
        return Err(LmError::InvalidTokenizer {
            what: format!("{SCORES_KEY}[{i}] is NaN"),
        });
    }
    // `+ 0.0` turns -0.0 into 0.0, so that `total_cmp` orders like Python's float comparison.
    let score = |i: usize| scores[i] + 0.0;
    let mut first_id: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    let mut repeated = vec![false; tokens.len()];
    for (i, t) in tokens.iter().enumerate() {
        match first_id.entry(t.as_str()) {
            Entry::Vacant(e) => {
                e.insert(i);
            }
            Entry::Occupied(_) => repeated[i] = true,
        }
    }
    // (priority, left id, right id)
    let mut merges: Vec<(f32, usize, usize)> = Vec::new();
    let mut local: Vec<(usize, usize)> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if repeated[i] {
            continue;
        }
        local.clear();
        for (at, _) in token.char_indices().skip(1) {
            let (l, r) = token.split_at(at);
            // The right piece is only looked up when the left one is a token.
            if let Some(&l) = first_id.get(l)
                && let Some(&r) = first_id.get(r)
            {
                local.push((l, r));
            }
        }
        // Stable: splits with equal piece scores keep left-to-right order.
        local.sort_by(|a, b| {
            score(b.0)
                .total_cmp(&score(a.0))
                .then(score(b.1).total_cmp(&score(a.1)))
        });
        merges.extend(local.iter().map(|&(l, r)| (score(i), l, r)));
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(merges
        .into_iter()
        .map(|(_, l, r)| (tokens[l].clone(), tokens[r].clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::gguf::{GgufWriter, MetadataArray, MetadataValue};

    fn strings(v: &[&str]) -> MetadataValue {
        MetadataValue::Array(MetadataArray::String(
            v.iter().map(|s| s.to_string()).collect(),
        ))
    }

    fn tiny_writer(pre: &str, add_bos: Option<bool>) -> GgufWriter {
        // "Ġ" is the byte-level image of the space byte.
        let tokens = [
            "<s>", "h", "e", "l", "o", "Ġ", "w", "r", "d", "1", "2", "he", "ll", "hell", "hello",
            "Ġw",
        ];
        let mut types = vec![1i32; tokens.len()];
        types[0] = TOKEN_TYPE_CONTROL;
        let mut w = GgufWriter::new();
        w.add_metadata(MODEL_KEY, MetadataValue::String("gpt2".into()))
            .add_metadata(PRE_KEY, MetadataValue::String(pre.into()))
            .add_metadata(TOKENS_KEY, strings(&tokens))
            .add_metadata(
                MERGES_KEY,
                strings(&["h e", "l l", "he ll", "hell o", "Ġ w"]),
            )
            .add_metadata(
                TOKEN_TYPE_KEY,
                MetadataValue::Array(MetadataArray::I32(types)),
            )
            .add_metadata("tokenizer.ggml.bos_token_id", MetadataValue::U32(0));
        if let Some(add_bos) = add_bos {
            w.add_metadata("tokenizer.ggml.add_bos_token", MetadataValue::Bool(add_bos));
        }
        w
    }

    fn tiny(pre: &str, add_bos: bool) -> GgufHeader {
        GgufHeader::parse(&tiny_writer(pre, Some(add_bos)).to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn tiny_bpe_encodes_and_decodes() {
        let tok = tokenizer_from_gguf(&tiny("smollm", false)).unwrap();
        let enc = tok.encode("hello world12", false).unwrap();
        assert_eq!(enc.get_ids(), [14, 15, 4, 7, 3, 8, 9, 10]);
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), "hello world12");
        let with_special = tok.encode("<s>hello", false).unwrap();
        assert_eq!(with_special.get_ids(), [0, 14]);
    }

    #[test]
    fn add_bos_adds_a_post_processor() {
        let tok = tokenizer_from_gguf(&tiny("gpt-2", true)).unwrap();
        assert_eq!(tok.encode("hello", true).unwrap().get_ids(), [0, 14]);
        assert_eq!(tok.encode("hello", false).unwrap().get_ids(), [14]);
    }

    #[test]
    fn llama_bpe_splits_like_llama3_and_adds_bos_by_default() {
        // No add_bos_token key: llama.cpp adds BOS for the Llama 3 pre-tokenizers.
        let header =
            GgufHeader::parse(&tiny_writer("llama-bpe", None).to_bytes().unwrap()).unwrap();
        let tok = tokenizer_from_gguf(&header).unwrap();
        let enc = tok.encode("hello world12", true).unwrap();
        assert_eq!(enc.get_ids(), [0, 14, 15, 4, 7, 3, 8, 9, 10]);
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), "hello world12");
        // Digits group in threes and punctuation is split off words; "hello" stays whole
        // because it is in the vocabulary (ignore_merges).
        let pieces = |text: &str| {
            let pre = byte_level_pre("llama-bpe", false).unwrap().pre_tokenizer;
            let mut s = tokenizers::PreTokenizedString::from(text);
            tokenizers::PreTokenizer::pre_tokenize(&pre, &mut s).unwrap();
            s.get_splits(
                tokenizers::OffsetReferential::Original,
                tokenizers::OffsetType::Byte,
            )
            .into_iter()
            .map(|(p, _, _)| p.to_string())
            .collect::<Vec<_>>()
        };
        assert_eq!(
            pieces("I'm 12345 ok!!\n\n  x"),
            ["I", "'m", "Ġ", "123", "45", "Ġok", "!!ĊĊ", "Ġ", "Ġx"]
        );
        // The default gpt2 pre-tokenizer does not add BOS unless asked.
        let header = GgufHeader::parse(&tiny_writer("gpt-2", None).to_bytes().unwrap()).unwrap();
        let tok = tokenizer_from_gguf(&header).unwrap();
        assert_eq!(tok.encode("hello", true).unwrap().get_ids(), [14]);
    }

    #[test]
    fn unknown_pre_tokenizer_is_an_error() {
        let err = tokenizer_from_gguf(&tiny("mystery", false)).unwrap_err();
        assert!(
            matches!(&err, LmError::UnsupportedTokenizer { key, value, .. }
                if *key == PRE_KEY && value == "mystery"),
            "{err}"
        );
        assert!(err.to_string().contains("llama-bpe"), "{err}");
    }

    /// A tiny SentencePiece vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then
    /// `▁ a b c bc ab ▁a abc ▁abc` with falling scores, a control token and a user-defined one.
    struct TinySpm {
        tokens: Vec<String>,
        scores: Vec<f32>,
        types: Vec<i32>,
    }

    const SPM_FIRST_PIECE: u32 = 259;

    fn tiny_spm() -> TinySpm {
        let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
        let mut scores = vec![0.0f32; 3];
        let mut types = vec![2, TOKEN_TYPE_CONTROL, TOKEN_TYPE_CONTROL];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            scores.push(0.0);
            types.push(6);
        }
        for (i, piece) in ["▁", "a", "b", "c", "bc", "ab", "▁a", "abc", "▁abc"]
            .iter()
            .enumerate()
        {
            tokens.push(piece.to_string());
            scores.push(-1.0 - i as f32);
            types.push(1);
        }
        tokens.push("<ctl>".into());
        scores.push(0.0);
        types.push(TOKEN_TYPE_CONTROL);
        tokens.push("\n\n".into());
        scores.push(0.0);
        types.push(TOKEN_TYPE_USER_DEFINED);
        TinySpm {
            tokens,
            scores,
            types,
        }
    }

    fn spm_writer(spm: &TinySpm, add_space_prefix: bool) -> GgufWriter {
        let mut w = GgufWriter::new();
        w.add_metadata(MODEL_KEY, MetadataValue::String("llama".into()))
            .add_metadata(PRE_KEY, MetadataValue::String("default".into()))
            .add_metadata(
                TOKENS_KEY,
                MetadataValue::Array(MetadataArray::String(spm.tokens.clone())),
            )
            .add_metadata(
                SCORES_KEY,
                MetadataValue::Array(MetadataArray::F32(spm.scores.clone())),
            )
            .add_metadata(
                TOKEN_TYPE_KEY,
                MetadataValue::Array(MetadataArray::I32(spm.types.clone())),
            )
            .add_metadata("tokenizer.ggml.bos_token_id", MetadataValue::U32(1))
            .add_metadata("tokenizer.ggml.eos_token_id", MetadataValue::U32(2))
            .add_metadata("tokenizer.ggml.unknown_token_id", MetadataValue::U32(0))
            .add_metadata("tokenizer.ggml.add_bos_token", MetadataValue::Bool(true))
            .add_metadata(ADD_SPACE_PREFIX_KEY, MetadataValue::Bool(add_space_prefix));
        w
    }

    fn parse(w: &GgufWriter) -> GgufHeader {
        GgufHeader::parse(&w.to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn spm_merges_follow_scores() {
        let spm = tiny_spm();
        let merges = spm_merges_from_scores(&spm.tokens, &spm.scores).unwrap();
        let pairs: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        // bc (-5), ab (-6), ▁a (-7), abc (-8: a+bc before ab+c, as a (-2) outranks ab (-6)),
        // ▁abc (-9: ▁+abc before ▁a+bc, as ▁ (-1) outranks ▁a (-7)).
        assert_eq!(
            pairs,
            [
                ("b", "c"),
                ("a", "b"),
                ("▁", "a"),
                ("a", "bc"),
                ("ab", "c"),
                ("▁", "abc"),
                ("▁a", "bc"),
            ]
        );
    }

    #[test]
    fn spm_merges_count_repeats_once_and_equal_zero_scores() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "ab"].map(String::from).to_vec();
        // -0.0 and 0.0 tie (as in Python), so vocabulary order decides: ab before bc. The
        // repeated "ab" adds no second merge.
        let scores = [0.0, 0.0, 0.0, -0.0, 0.0, 5.0];
        let merges = spm_merges_from_scores(&tokens, &scores).unwrap();
        let pairs: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "b"), ("b", "c")]);
    }

    #[test]
    fn tiny_spm_tokenizes_by_hand() {
        let spm = tiny_spm();
        let id = |piece: &str| spm.tokens.iter().position(|t| t == piece).unwrap() as u32;
        assert_eq!(id("▁"), SPM_FIRST_PIECE);
        let tok = tokenizer_from_gguf(&parse(&spm_writer(&spm, false))).unwrap();
        let ids = |text: &str, special: bool| tok.encode(text, special).unwrap().get_ids().to_vec();

        // "abc▁abc": b+c twice, then ▁+a, then a+bc → abc, then ▁a+bc → ▁abc.
        assert_eq!(ids("abc abc", false), [id("abc"), id("▁abc")]);
        assert_eq!(ids("abc abc", true), [1, id("abc"), id("▁abc")]);
        // c a b: only a+b applies.
        assert_eq!(ids("cab", false), [id("c"), id("ab")]);
        // 'd' and 'é' are not tokens: their UTF-8 bytes are.
        assert_eq!(ids("abdé", false), [id("ab"), 3 + 0x64, 3 + 0xC3, 3 + 0xA9]);
        // Control and user-defined tokens are matched in the raw text.
        assert_eq!(
            ids("a<ctl>b\n\nc", false),
            [id("a"), id("<ctl>"), id("b"), id("\n\n"), id("c")]
        );
        // Decoding restores spaces and bytes; special tokens are skipped on request.
        let enc = ids("abc abdé\n\nc", true);
        assert_eq!(tok.decode(&enc, true).unwrap(), "abc abdé\n\nc");
        assert_eq!(tok.decode(&enc, false).unwrap(), "<s>abc abdé\n\nc");

        // Saved as tokenizer.json and loaded back, it tokenizes the same.
        let json = tok.to_string(false).unwrap();
        let reloaded: Tokenizer = json.parse().unwrap();
        assert_eq!(
            reloaded.encode("abc abdé\n\nc", true).unwrap().get_ids(),
            enc
        );

        // With add_space_prefix, "abc" is read as "▁abc" and decoded without the space.
        let tok = tokenizer_from_gguf(&parse(&spm_writer(&spm, true))).unwrap();
        let enc = tok.encode("abc", false).unwrap();
        assert_eq!(enc.get_ids(), [id("▁abc")]);
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), "abc");
        assert_eq!(tok.encode("abc", true).unwrap().get_ids(), [1, id("▁abc")]);
    }

    /// `header`'s metadata with `key` replaced by `value`, or dropped when `value` is `None`.
    fn with_key(header: &GgufHeader, key: &str, value: Option<MetadataValue>) -> GgufHeader {
        let mut w = GgufWriter::new();
        for k in [
            MODEL_KEY,
            PRE_KEY,
            TOKENS_KEY,
            SCORES_KEY,
            TOKEN_TYPE_KEY,
            MERGES_KEY,
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.add_bos_token",
        ] {
            let v = if k == key {
                value.clone()
            } else {
                header.get(k).cloned()
            };
            if let Some(v) = v {
                w.add_metadata(k, v);
            }
        }
        parse(&w)
    }

    #[test]
    fn spm_missing_or_mismatched_metadata_is_a_typed_error() {
        let spm = tiny_spm();
        let good = parse(&spm_writer(&spm, false));
        let err_with = |key: &str, value: Option<MetadataValue>| {
            tokenizer_from_gguf(&with_key(&good, key, value)).unwrap_err()
        };
        let f32s = |v: Vec<f32>| Some(MetadataValue::Array(MetadataArray::F32(v)));

        let err = err_with(SCORES_KEY, None);
        assert!(
            matches!(&err, LmError::MissingKey { key } if key == SCORES_KEY),
            "{err}"
        );
        let n = spm.tokens.len();
        let err = err_with(SCORES_KEY, f32s(spm.scores[1..].to_vec()));
        assert!(
            matches!(&err, LmError::TokenizerLengthMismatch { key, len, tokens }
                if *key == SCORES_KEY && *len == n - 1 && *tokens == n),
            "{err}"
        );
        assert!(err.to_string().contains(SCORES_KEY), "{err}");
        let mut types = spm.types.clone();
        types.push(1);
        let err = err_with(
            TOKEN_TYPE_KEY,
            Some(MetadataValue::Array(MetadataArray::I32(types))),
        );
        assert!(
            matches!(&err, LmError::TokenizerLengthMismatch { key, .. } if *key == TOKEN_TYPE_KEY),
            "{err}"
        );
        let mut scores = spm.scores.clone();
        scores[265] = f32::NAN;
        let err = err_with(SCORES_KEY, f32s(scores));
        assert!(
            matches!(&err, LmError::InvalidTokenizer { what } if what.contains("[265]")),
            "{err}"
        );

        // A Llama 3 pre-tokenizer on the SentencePiece model; an unknown model.
        let err = err_with(PRE_KEY, Some(MetadataValue::String("llama-bpe".into())));
        assert!(
            matches!(&err, LmError::UnsupportedTokenizer { key, value, .. }
                if *key == PRE_KEY && value == "llama-bpe"),
            "{err}"
        );
        let err = err_with(MODEL_KEY, Some(MetadataValue::String("rwkv".into())));
        assert!(
            matches!(&err, LmError::UnsupportedTokenizer { key, value, .. }
                if *key == MODEL_KEY && value == "rwkv"),
            "{err}"
        );
        assert!(err.to_string().contains(MODEL_KEY), "{err}");
        // Without the pre key, "default" is assumed.
        assert!(tokenizer_from_gguf(&with_key(&good, PRE_KEY, None)).is_ok());
        assert!(matches!(
            spm_merges_from_scores(&spm.tokens, &spm.scores[1..]),
            Err(LmError::TokenizerLengthMismatch { .. })
        ));
    }

    #[test]
    fn gpt2_without_merges_is_a_missing_key() {
        let err =
            tokenizer_from_gguf(&with_key(&tiny("gpt-2", false), MERGES_KEY, None)).unwrap_err();
        assert!(
            matches!(&err, LmError::MissingKey { key } if key == MERGES_KEY),
            "{err}"
        );
    }

    #[test]
    fn llama3_stop_ids_are_looked_up() {
        let tokens = [
            "a",
            LLAMA3_BEGIN_OF_TEXT,
            LLAMA3_END_OF_TEXT,
            LLAMA3_START_HEADER,
            LLAMA3_END_HEADER,
            LLAMA3_EOT,
        ];
        let mut w = GgufWriter::new();
        w.add_metadata(MODEL_KEY, MetadataValue::String("gpt2".into()))
            .add_metadata(PRE_KEY, MetadataValue::String("llama-bpe".into()))
            .add_metadata(TOKENS_KEY, strings(&tokens))
            .add_metadata(MERGES_KEY, strings(&[]))
            .add_metadata(
                TOKEN_TYPE_KEY,
                MetadataValue::Array(MetadataArray::I32(vec![1, 3, 3, 3, 3, 3])),
            )
            .add_metadata("tokenizer.ggml.bos_token_id", MetadataValue::U32(1));
        let tok = tokenizer_from_gguf(&parse(&w)).unwrap();
        assert_eq!(llama3_stop_ids(&tok).unwrap(), [5, 2]);
        // The chat prompt's special tokens are single tokens.
        let prompt = llama3_chat_prompt(&[ChatMessage::user("a")], true);
        let ids = tok
            .encode(prompt.as_str(), false)
            .unwrap()
            .get_ids()
            .to_vec();
        // (This vocabulary only knows "a": the other characters of "user", "assistant" and
        // "\n\n" have no token and no byte fallback, so they are dropped.)
        assert_eq!(ids, [1, 3, 4, 0, 5, 3, 0, 0, 4]);

        // A vocabulary without <|eot_id|>.
        let header = tiny("llama-bpe", false);
        let err = llama3_stop_ids(&tokenizer_from_gguf(&header).unwrap()).unwrap_err();
        assert!(
            matches!(&err, LmError::TokenNotInVocabulary { token, .. } if token == LLAMA3_EOT),
            "{err}"
        );
    }
}
