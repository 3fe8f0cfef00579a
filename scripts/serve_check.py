#!/usr/bin/env python3
"""Checks a running `serve` with real clients: the `openai` Python package and raw HTTP.

    cargo run --release -p examples --bin serve -- --replicas 2 --api-key-env SERVE_KEY \
        --remote dead=http://127.0.0.1:9/v1 &
    SERVE_KEY=... python3 scripts/serve_check.py --base http://127.0.0.1:8080 --model smollm2 \
        --dead dead --requests 2000 --concurrency 16 --out out/serve_check.json

1. Completions, chat and streaming through `openai.OpenAI` (streamed text == whole answer).
2. `router-mf-*` / `guided-*` models when listed: decisions and oracle calls reported in usage.
3. Errors: malformed JSON, an oversize body, an unknown model, a missing and a wrong bearer
   key, a dead remote backend, a client that hangs up mid-stream — each answered with
   OpenAI-style error JSON and the right status, and the server still serving afterwards.
4. A bounded load test: N requests at concurrency C over P distinct prompts (greedy), each
   answer compared with the prompt's reference answer (fetched alone first): no lost or
   mixed-up answers; throughput and p50/p99 latency.

Writes a JSON summary (--out) and exits non-zero when a check fails.
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import openai

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def raw(base, method, path, body=None, key=None, headers=None):
    """One HTTP request with http.client: (status, parsed JSON or text)."""
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = f"Bearer {key}"
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    try:
        return r.status, json.loads(text)
    except ValueError:
        return r.status, text


def error_shape(v):
    return isinstance(v, dict) and isinstance(v.get("error"), dict) and v["error"].get("message") and v["error"].get("type")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--model", default="smollm2", help="a local model id")
    ap.add_argument("--dead", default=None, help="a remote backend id whose server is down")
    ap.add_argument("--key-env", default="SERVE_KEY", help="environment variable with the bearer key")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--prompts", type=int, default=40, help="distinct prompts in the load test")
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--out", default=None)
    ap.add_argument("--router-dir", default=None,
                    help="a harness_router output folder: the server's router-mf-<threshold> decisions are compared with its decisions.jsonl")
    ap.add_argument("--router-items", type=int, default=100, help="decisions to compare")
    a = ap.parse_args()
    key = os.environ.get(a.key_env)
    summary = {"base": a.base, "model": a.model}
    client = openai.OpenAI(base_url=a.base + "/v1", api_key=key or "none", max_retries=0, timeout=300)

    # 1. Models, completions, chat, streaming.
    ids = [m.id for m in client.models.list().data]
    print("models:", ", ".join(ids))
    check(a.model in ids, f"/v1/models lists {a.model}")
    c = client.completions.create(model=a.model, prompt="The capital of France is", max_tokens=12, temperature=0)
    print("completion:", repr(c.choices[0].text), c.usage)
    check(c.object == "text_completion" and c.usage.completion_tokens > 0, "completion answered")
    streamed = "".join(
        ch.choices[0].text
        for ch in client.completions.create(
            model=a.model, prompt="The capital of France is", max_tokens=12, temperature=0, stream=True
        )
        if ch.choices
    )
    check(streamed == c.choices[0].text, "streamed completion == whole completion")
    msgs = [{"role": "user", "content": "What is 2+2? Answer in one word."}]
    chat = client.chat.completions.create(model=a.model, messages=msgs, max_tokens=16, temperature=0)
    print("chat:", repr(chat.choices[0].message.content), chat.choices[0].finish_reason)
    check(chat.object == "chat.completion" and chat.choices[0].message.role == "assistant", "chat answered")
    pieces = []
    for ch in client.chat.completions.create(model=a.model, messages=msgs, max_tokens=16, temperature=0, stream=True):
        if ch.choices and ch.choices[0].delta.content:
            pieces.append(ch.choices[0].delta.content)
    check("".join(pieces) == chat.choices[0].message.content, f"streamed chat == whole chat ({len(pieces)} pieces)")
    summary["completion"] = c.choices[0].text
    summary["chat"] = chat.choices[0].message.content

    # 2. Routed and guided models, when served.
    for mid in [m for m in ids if m.startswith("router-mf-") or m.startswith("guided-")]:
        r = client.completions.create(model=mid, prompt="Question: What is 17 * 3?\nAnswer:", max_tokens=8, temperature=0)
        extra = r.usage.model_extra or {}
        print(f"{mid}: {r.choices[0].text!r} usage extras {extra}")
        if mid.startswith("router-mf-"):
            check("routed_to" in extra and "router_score" in extra, f"{mid} reports its decision")
        else:
            check("oracle_calls" in extra, f"{mid} reports its oracle calls")

    # 2b. The server's MF decisions against the library's (harness_router's test decisions).
    if a.router_dir:
        summ = json.load(open(os.path.join(a.router_dir, "summary.json")))
        model = f"router-mf-{summ['threshold']!r}"
        decisions = [json.loads(l) for l in open(os.path.join(a.router_dir, "decisions.jsonl")) if l.strip()]
        decisions = decisions[: a.router_items]
        agree, max_dscore = 0, 0.0
        for d in decisions:
            r = client.completions.create(model=model, prompt=d["text"], max_tokens=1, temperature=0)
            extra = r.usage.model_extra or {}
            want = summ["strong"] if d["strong"] else summ["weak"]
            agree += extra.get("routed_to") == want
            max_dscore = max(max_dscore, abs(extra.get("router_score", float("nan")) - d["score"]))
        print(f"{model}: {agree}/{len(decisions)} decisions equal the library's; max |score difference| {max_dscore:.2e}")
        summary["router"] = {"model": model, "compared": len(decisions), "agree": agree, "max_score_diff": max_dscore}
        check(agree == len(decisions), f"router-mf decisions equal the library's ({agree}/{len(decisions)})")

    # 3. Errors, then still serving.
    st, v = raw(a.base, "POST", "/v1/completions", body='{"model": "x", "prompt": ', key=key)
    check(st == 400 and error_shape(v), f"malformed JSON -> 400 ({st})")
    st, v = raw(a.base, "POST", "/v1/completions", body=json.dumps({"model": a.model, "prompt": "x" * (2 << 20)}), key=key)
    check(st == 413 and error_shape(v), f"oversize body -> 413 ({st})")
    try:
        client.completions.create(model="no-such-model", prompt="hi", max_tokens=2)
        check(False, "unknown model -> 404")
    except openai.NotFoundError as e:
        check(e.status_code == 404 and e.body.get("code") == "model_not_found", "unknown model -> 404 model_not_found")
    try:
        client.completions.create(model=a.model, prompt="hi", max_tokens=100000)
        check(False, "max_tokens over the cap -> 400")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and e.body.get("param") == "max_tokens", "max_tokens over the cap -> 400")
    if key:
        for k, what in [(None, "missing"), ("wrong-" + "k" * 8, "wrong")]:
            st, v = raw(a.base, "POST", "/v1/completions", body=json.dumps({"model": a.model, "prompt": "hi"}), key=k)
            check(st == 401 and error_shape(v) and key not in json.dumps(v), f"{what} bearer key -> 401")
        try:
            openai.OpenAI(base_url=a.base + "/v1", api_key="bad", max_retries=0).models.list()
            check(False, "openai client with a bad key -> AuthenticationError")
        except openai.AuthenticationError:
            check(True, "openai client with a bad key -> AuthenticationError")
    if a.dead:
        try:
            client.completions.create(model=a.dead, prompt="hi", max_tokens=2)
            check(False, "dead remote backend -> 502")
        except openai.APIStatusError as e:
            check(e.status_code == 502 and (key is None or key not in str(e.body)), f"dead remote backend -> 502 ({e.status_code})")
    # Hang up mid-stream.
    u = urllib.parse.urlparse(a.base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    body = json.dumps({"model": a.model, "prompt": "Once upon a time", "max_tokens": 400, "stream": True, "temperature": 0})
    conn.request("POST", "/v1/completions", body=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    first = resp.read(6)  # http.client undoes the chunked encoding
    conn.sock.close()
    conn.close()
    check(resp.status == 200 and first.startswith(b"data: "), "stream began, client hung up")
    time.sleep(0.5)
    st, v = raw(a.base, "GET", "/metrics", key=key)
    cancelled = [l for l in v.splitlines() if l.startswith("llm_requests_total") and 'outcome="cancelled"' in l]
    print("metrics:", cancelled)
    check(any(f'model="{a.model}"' in l for l in cancelled), "the hung-up stream counted as cancelled")
    st, v = raw(a.base, "GET", "/health")
    check(st == 200 and v.get("status") == "ok", "still healthy after the error cases")

    # 4. Load test.
    prompts = [f"Question {i}: name a colour that starts with the letter {chr(65 + i % 26)}.\nAnswer:" for i in range(a.prompts)]
    reference = {}
    for p in prompts:
        reference[p] = client.completions.create(model=a.model, prompt=p, max_tokens=a.max_tokens, temperature=0).choices[0].text
    latencies, mismatches, errors, seen_ids = [], [], [], set()
    lock = threading.Lock()

    def one(i):
        p = prompts[(i * 7) % len(prompts)]
        t = time.perf_counter()
        try:
            r = client.completions.create(model=a.model, prompt=p, max_tokens=a.max_tokens, temperature=0)
            dt = time.perf_counter() - t
            with lock:
                latencies.append(dt)
                seen_ids.add(r.id)
                if r.choices[0].text != reference[p]:
                    mismatches.append(i)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            with lock:
                errors.append(f"{i}: {e}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.concurrency) as ex:
        list(ex.map(one, range(a.requests)))
    wall = time.perf_counter() - t0
    latencies.sort()
    q = lambda f: latencies[min(len(latencies) - 1, int(f * len(latencies)))] if latencies else float("nan")
    load = {
        "requests": a.requests,
        "concurrency": a.concurrency,
        "distinct_prompts": a.prompts,
        "max_tokens": a.max_tokens,
        "answered": len(latencies),
        "errors": len(errors),
        "mixed_up": len(mismatches),
        "unique_ids": len(seen_ids),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p99_s": round(q(0.99), 3),
        "max_s": round(latencies[-1], 3) if latencies else None,
    }
    print("load:", json.dumps(load))
    check(load["answered"] == a.requests and not errors, f"load: {load['answered']}/{a.requests} answered, {len(errors)} errors")
    check(not mismatches, f"load: {len(mismatches)} answers differ from their prompt's reference")
    check(len(seen_ids) == a.requests, "load: every response id unique")
    summary["load"] = load
    summary["failures"] = FAILURES
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(summary, f, indent=2)
    print(f"{len(FAILURES)} failure(s)")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
