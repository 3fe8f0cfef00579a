"""Peer measurement for `lm_bench --agree`: llama.cpp's teacher-forced log-probs on the same
token windows (llama-cpp-python, `logits_all=True`), so that its distance from the exact f32
path is printed beside the quantized executor's.

Input: the JSON `lm_bench --agree N --agree-json F` writes (`windows`: lists of token ids;
`f32`: per-window log-probs of tokens 1.. from the f32 engine). Output: JSON with llama.cpp's
log-probs, its mean |Δ| to f32 and both perplexities.

    python3 crates/lm/peer/llama_cpp_logprobs.py --gguf MODEL.gguf --agree F --json OUT
"""
import argparse
import json
import math

import numpy as np
from llama_cpp import Llama

p = argparse.ArgumentParser()
p.add_argument("--gguf", required=True)
p.add_argument("--agree", required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--json")
a = p.parse_args()

data = json.load(open(a.agree))
windows = data["windows"]
n_ctx = max(len(w) for w in windows)
llm = Llama(model_path=a.gguf, n_threads=a.threads, n_threads_batch=a.threads, n_ctx=n_ctx,
            n_batch=min(n_ctx, 512), logits_all=True, verbose=False)
out = []
for w in windows:
    llm.reset()
    llm.eval(w)
    logits = np.array(llm.scores[: len(w)], dtype=np.float64)
    m = logits.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    lp = [float(logits[i, w[i + 1]] - lse[i]) for i in range(len(w) - 1)]
    out.append(lp)
flat = [x for w in out for x in w]
ref = [x for w in data["f32"] for x in w]
mean_abs = sum(abs(x - y) for x, y in zip(flat, ref)) / len(ref)
ppl = math.exp(-sum(flat) / len(flat))
ppl_ref = math.exp(-sum(ref) / len(ref))
res = dict(tokens=len(flat), mean_abs_delta_vs_f32=mean_abs, ppl=ppl, ppl_f32=ppl_ref, logprobs=out)
print(f"llama.cpp: {len(flat)} tokens, mean |Δ| vs f32 {mean_abs:.4f}, ppl {ppl:.4f} (f32 {ppl_ref:.4f})")
if a.json:
    json.dump(res, open(a.json, "w"))
