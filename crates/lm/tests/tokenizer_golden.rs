//! Tokenizers against the reference input_ids: SmolLM2's BPE and Gemma 3's SentencePiece BPE
//! rebuilt from their GGUF metadata, the Llama 3.2 tokenizer rebuilt from GGUF metadata written
//! from its `tokenizer.json` (and that file itself), and all-MiniLM-L6-v2's `tokenizer.json`.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use lm::GgufFile;
use lm::format::gguf::{GgufHeader, GgufWriter, MetadataArray, MetadataValue};
use lm::tokenizer::{
    ChatMessage, GgufSpecialTokens, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED,
    llama3_chat_prompt, llama3_stop_ids, load_tokenizer_json, spm_merges_from_scores,
    tokenizer_from_gguf,
};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u32::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

#[test]
fn smollm2_gguf_tokenizer_matches_transformers_input_ids() {
    let Some(path) = common::smollm2_gguf_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("smollm2_logits.json") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let tok = tokenizer_from_gguf(file.header()).unwrap();
    assert_eq!(tok.get_vocab_size(true), 49152);
    let specials = GgufSpecialTokens::from_gguf(file.header()).unwrap();
    assert_eq!(specials.bos, Some(1));
    assert_eq!(specials.eos, Some(2));
    assert_eq!(specials.unknown, Some(0));
    assert_eq!(specials.padding, Some(2));

    let cases = golden["cases"].as_array().unwrap();
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let expected = ids(&case["input_ids"]);
        let enc = tok.encode(prompt, false).unwrap();
        assert_eq!(enc.get_ids(), expected.as_slice(), "prompt {prompt:?}");
        let decoded = tok.decode(enc.get_ids(), false).unwrap();
        assert_eq!(decoded, prompt);
        println!("{} tokens identical: {prompt:?}", expected.len());
    }
    // The greedy continuations decode to the reference text.
    for case in cases {
        let text = case["greedy_32_text"].as_str().unwrap();
        let decoded = tok.decode(&ids(&case["greedy_32"]), false).unwrap();
        assert_eq!(decoded, text);
    }
    println!("{} prompts tokenised identically", cases.len());
}

#[test]
fn minilm_tokenizer_json_matches_sentence_transformers_input_ids() {
    let Some(dir) = common::minilm_dir_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("minilm_embeddings.json") else {
        return;
    };
    let mut tok = load_tokenizer_json(dir.join("tokenizer.json")).unwrap();
    // sentence-transformers truncates at max_seq_length = 256 and pads per batch, not to the
    // file's fixed 128.
    tok.with_truncation(Some(TruncationParams {
        max_length: 256,
        ..Default::default()
    }))
    .unwrap();
    tok.with_padding(None::<PaddingParams>);
    let cases = golden["cases"].as_array().unwrap();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let enc = tok.encode(text, true).unwrap();
        assert_eq!(
            enc.get_ids(),
            ids(&case["input_ids"]).as_slice(),
            "text {text:?}"
        );
    }
    println!("{} texts tokenised identically", cases.len());
}

#[test]
fn gemma3_gguf_tokenizer_matches_transformers_input_ids() {
    let Some(path) = common::gemma3_gguf_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("gemma3_logits.json") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let header = file.header();

    let tokens = header.get_str_array("tokenizer.ggml.tokens").unwrap();
    let scores = header.get_f32_array("tokenizer.ggml.scores").unwrap();
    let start = Instant::now();
    let merges = spm_merges_from_scores(tokens, scores).unwrap();
    let merges_time = start.elapsed();
    let start = Instant::now();
    let tok = tokenizer_from_gguf(header).unwrap();
    let build_time = start.elapsed();
    println!(
        "Gemma 3: {} tokens, {} merges derived in {merges_time:.2?}; whole tokenizer built in \
         {build_time:.2?}",
        tokens.len(),
        merges.len()
    );
    assert_eq!(tok.get_vocab_size(true), 262_144);
    let specials = GgufSpecialTokens::from_gguf(header).unwrap();
    assert_eq!(specials.bos, Some(2));
    assert_eq!(specials.eos, Some(1));

    let cases = golden["cases"].as_array().unwrap();
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let expected = ids(&case["input_ids"]);
        // The golden ids were made with the file's add_bos_token = true: BOS (2) first.
        assert_eq!(expected[0], 2);
        let enc = tok.encode(prompt, true).unwrap();
        assert_eq!(enc.get_ids(), expected.as_slice(), "prompt {prompt:?}");
        let without_bos = tok.encode(prompt, false).unwrap();
        assert_eq!(without_bos.get_ids(), &expected[1..], "prompt {prompt:?}");
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), prompt);
        println!("{} tokens identical: {:?}", expected.len(), short(prompt));
    }
    for case in cases {
        let text = case["greedy_32_text"].as_str().unwrap();
        let decoded = tok.decode(&ids(&case["greedy_32"]), true).unwrap();
        assert_eq!(decoded, text);
    }
    println!("{} prompts tokenised identically", cases.len());
}

fn short(text: &str) -> String {
    text.chars().take(60).collect()
}

/// The Llama 3.2 `tokenizer.json` written as GGUF tokenizer metadata, the way llama.cpp's
/// converter does: every token by id (added ones included), the merges, added special tokens
/// as control tokens, `tokenizer.ggml.pre = "llama-bpe"`.
fn llama3_gguf_from_tokenizer_json(json: &serde_json::Value, eos: &str) -> GgufHeader {
    let model = &json["model"];
    let mut by_id: HashMap<u64, (String, i32)> = HashMap::new();
    for (token, id) in model["vocab"].as_object().unwrap() {
        by_id.insert(id.as_u64().unwrap(), (token.clone(), 1));
    }
    for added in json["added_tokens"].as_array().unwrap() {
        let kind = if added["special"].as_bool().unwrap() {
            TOKEN_TYPE_CONTROL
        } else {
            TOKEN_TYPE_USER_DEFINED
        };
        let token = added["content"].as_str().unwrap().to_string();
        by_id.insert(added["id"].as_u64().unwrap(), (token, kind));
    }
    let n = by_id.len() as u64;
    let (tokens, types): (Vec<String>, Vec<i32>) = (0..n)
        .map(|id| {
            by_id
                .remove(&id)
                .unwrap_or_else(|| panic!("no token with id {id}"))
        })
        .unzip();
    let merges: Vec<String> = model["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(pair) => format!(
                "{} {}",
                pair[0].as_str().unwrap(),
                pair[1].as_str().unwrap()
            ),
            other => panic!("unexpected merge {other}"),
        })
        .collect();
    let id_of = |t: &str| tokens.iter().position(|x| x == t).unwrap() as u32;
    let mut w = GgufWriter::new();
    w.add_metadata("tokenizer.ggml.model", MetadataValue::String("gpt2".into()))
        .add_metadata(
            "tokenizer.ggml.pre",
            MetadataValue::String("llama-bpe".into()),
        )
        .add_metadata(
            "tokenizer.ggml.bos_token_id",
            MetadataValue::U32(id_of("<|begin_of_text|>")),
        )
        .add_metadata(
            "tokenizer.ggml.eos_token_id",
            MetadataValue::U32(id_of(eos)),
        )
        .add_metadata("tokenizer.ggml.add_bos_token", MetadataValue::Bool(true))
        .add_metadata(
            "tokenizer.ggml.tokens",
            MetadataValue::Array(MetadataArray::String(tokens)),
        )
        .add_metadata(
            "tokenizer.ggml.token_type",
            MetadataValue::Array(MetadataArray::I32(types)),
        )
        .add_metadata(
            "tokenizer.ggml.merges",
            MetadataValue::Array(MetadataArray::String(merges)),
        );
    GgufHeader::parse(&w.to_bytes().unwrap()).unwrap()
}

#[test]
fn llama3_tokenizers_match_the_reference_ids() {
    let Some(path) = common::llama3_tokenizer_json_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("llama3_tokenizer.json") else {
        return;
    };
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // EOS as tokenizer_config.json beside it says (the base model's <|end_of_text|>).
    let eos = std::fs::read_to_string(path.with_file_name("tokenizer_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|c| c["eos_token"].as_str().map(str::to_string))
        .unwrap_or_else(|| "<|eot_id|>".to_string());
    let header = llama3_gguf_from_tokenizer_json(&json, &eos);
    let specials = GgufSpecialTokens::from_gguf(&header).unwrap();
    assert_eq!(specials.bos, Some(128_000));
    println!("EOS {eos:?} = {:?}", specials.eos);
    let start = Instant::now();
    let from_gguf = tokenizer_from_gguf(&header).unwrap();
    println!(
        "Llama 3 tokenizer from GGUF metadata built in {:.2?}",
        start.elapsed()
    );
    let from_json = load_tokenizer_json(&path).unwrap();
    assert_eq!(
        from_gguf.get_vocab_size(true),
        from_json.get_vocab_size(true)
    );

    let cases = golden["cases"].as_array().unwrap();
    for (name, tok) in [("GGUF", &from_gguf), ("tokenizer.json", &from_json)] {
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let with_bos = tok.encode(text, true).unwrap();
            assert_eq!(
                with_bos.get_ids(),
                ids(&case["ids_with_bos"]).as_slice(),
                "{name}, with BOS: {text:?}"
            );
            let plain = tok.encode(text, false).unwrap();
            assert_eq!(
                plain.get_ids(),
                ids(&case["ids_no_special"]).as_slice(),
                "{name}, without special tokens: {text:?}"
            );
            assert_eq!(tok.decode(plain.get_ids(), false).unwrap(), text, "{name}");
        }
        println!("{name}: {} texts tokenised identically", cases.len());
    }

    // The chat format and stop ids with the real vocabulary.
    for tok in [&from_gguf, &from_json] {
        assert_eq!(llama3_stop_ids(tok).unwrap(), [128_009, 128_001]);
    }
    check_llama3_chat(&from_gguf, &from_json);
}

fn check_llama3_chat(from_gguf: &Tokenizer, from_json: &Tokenizer) {
    let prompt = llama3_chat_prompt(
        &[
            ChatMessage::system("You are a helpful assistant."),
            ChatMessage::user("What is the capital of France?"),
        ],
        true,
    );
    let ids = from_gguf
        .encode(prompt.as_str(), false)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(
        from_json.encode(prompt.as_str(), false).unwrap().get_ids(),
        ids.as_slice()
    );
    let id = |t: &str| from_gguf.token_to_id(t).unwrap();
    // <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n ...
    assert_eq!(
        ids[..5],
        [128_000, 128_006, id("system"), 128_007, id("ĊĊ")]
    );
    // ... <|start_header_id|>assistant<|end_header_id|>\n\n
    assert_eq!(
        ids[ids.len() - 4..],
        [128_006, id("assistant"), 128_007, id("ĊĊ")]
    );
    assert_eq!(ids.iter().filter(|&&i| i == 128_009).count(), 2);
    assert_eq!(from_gguf.decode(&ids, false).unwrap(), prompt);
}
