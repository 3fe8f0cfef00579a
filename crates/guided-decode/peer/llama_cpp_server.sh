#!/usr/bin/env bash
# llama_cpp_server.sh -- the Python peer of `guided_decode::RemoteOracle`.
#
# Starts llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`)
# serving one GGUF file on 127.0.0.1 (loopback only; never 0.0.0.0), CPU only.
# It is the real, independent `/v1/completions` implementation that RemoteOracle is
# tested against: by tests/remote_llama_cpp.rs, and by hand through the
# guided_decode example's `--remote-oracle http://127.0.0.1:PORT/v1` URL.
#
# Usage:   llama_cpp_server.sh MODEL.gguf PORT [MODEL_ALIAS]
#          MODEL_ALIAS (default: the file name without .gguf) is the "model" name
#          that clients send and that GET /v1/models lists.
# Needs:   llama-cpp-python with its server extras
#          (pip install 'llama-cpp-python[server]', or uvicorn, fastapi,
#          sse-starlette, starlette-context, pydantic-settings, PyYAML).
# Settings: n_ctx 2048, one thread per available core (nproc), no GPU layers.
# Logs go to stderr; stdout stays empty.
#
# The script `exec`s the server, so its pid is the server's pid: killing the pid
# you started (kill PID) stops the server; nothing else is left behind.
#
# Readiness: the port opens only after the model has loaded, so poll
#   GET http://127.0.0.1:PORT/v1/models
# until it answers 200 (a JSON list whose data[0].id is MODEL_ALIAS), e.g.
#   for i in $(seq 120); do curl -sf http://127.0.0.1:$PORT/v1/models >/dev/null && break; sleep 0.5; done
# A small model (SmolLM2-135M) is ready in a few seconds; give up after ~60 s and
# check that the process is still alive (a bad path or a taken port makes it exit).
#
# Quirks of this server (llama-cpp-python 0.3.36) that a client must allow for:
#   * "prompt" must be a string (or a list of strings); token-id arrays are rejected
#     with HTTP 500 (pydantic validation error).
#   * A string prompt is tokenized with special tokens parsed, and BOS is prepended
#     only if the GGUF says tokenizer.ggml.add_bos_token (SmolLM2: false).
#   * repeat_penalty defaults to 1.1 even at temperature 0; send "repeat_penalty": 1.0
#     for plain greedy decoding. The reported logprobs are the unpenalized ones.
#   * "max_tokens": 0 (or null) means no limit; "n" > 1 and the "model" name are ignored.
#   * "echo": true with "logprobs" gives misaligned prompt logprobs; do not rely on it.
#
# Environment: PYTHON (default: python3, else python) picks the interpreter.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 MODEL.gguf PORT [MODEL_ALIAS]" >&2
    exit 2
fi

model=$1
port=$2
alias=${3:-$(basename "$model" .gguf)}

if [[ ! -f $model ]]; then
    echo "$0: no such model file: $model" >&2
    exit 2
fi
if ! [[ $port =~ ^[0-9]+$ ]] || (( port < 1 || port > 65535 )); then
    echo "$0: bad port: $port" >&2
    exit 2
fi

python=${PYTHON:-}
if [[ -z $python ]]; then
    if command -v python3 >/dev/null 2>&1; then python=python3; else python=python; fi
fi

threads=$(nproc 2>/dev/null || echo 1)

exec "$python" -m llama_cpp.server \
    --model "$model" \
    --model_alias "$alias" \
    --host 127.0.0.1 \
    --port "$port" \
    --n_ctx 2048 \
    --n_threads "$threads" \
    --n_threads_batch "$threads" \
    --n_gpu_layers 0 \
    1>&2
