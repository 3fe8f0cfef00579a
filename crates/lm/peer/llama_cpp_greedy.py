"""Peer check for the quantized executor's greedy agreement: llama.cpp (llama-cpp-python) greedy
32-token continuations of the golden prompts, compared with the PyTorch f32 reference ids in
`shared/golden/*_logits.json`. Prints, per prompt, whether llama.cpp's continuation is
identical or where it first diverges.

    python3 crates/lm/peer/llama_cpp_greedy.py --gguf MODEL.gguf --golden ../shared/golden/smollm2_logits.json
"""
import argparse
import json

from llama_cpp import Llama

p = argparse.ArgumentParser()
p.add_argument("--gguf", required=True)
p.add_argument("--golden", required=True)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()

golden = json.load(open(a.golden))
llm = Llama(model_path=a.gguf, n_threads=a.threads, n_ctx=1024, verbose=False)
diverged = 0
for case in golden["cases"]:
    ids = case["input_ids"]
    ref = case["greedy_32"]
    llm.reset()
    llm.eval(ids)
    out = []
    for _ in range(len(ref)):
        t = llm.sample(top_k=1, temp=0.0)
        out.append(t)
        if t == llm.token_eos():
            break
        llm.eval([t])
    k = next((i for i, (x, y) in enumerate(zip(out, ref)) if x != y), None)
    diverged += k is not None
    print(f"{case['prompt'][:40]!r}: {'identical' if k is None else f'diverges at token {k}'}")
print(f"llama.cpp: {diverged} of {len(golden['cases'])} greedy continuations differ from the f32 reference")
