"""Where the SLM route's time goes: prompt evaluation threads, prompt length, JSON grammar per token.

    python bench/slm_profile.py [--questions N] [--json-out FILE]

On the first N answerable dev questions of bench/data/questions.jsonl (real retrieval, the real
default GGUF): prompt evaluation time with ``n_threads_batch`` 1 vs 2 for the same tokens, at the
prompt budgets 150 and 300; time to first token and per generated token with the JSON grammar and
without it (plain text); and how many tokens the JSON output spends before its answer starts.
JSON on stdout, a short summary on stderr. Timings depend on the load: say what else was running.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from vehicle_assist import clock, models, paths
from vehicle_assist.advisory import prompt as prompts
from common import emit_json  # bench/common.py (the script's folder is on sys.path)


def med(values: list[float]) -> float | None:
    return round(float(np.median(values)), 1) if values else None


def prefill_ms(llm, tokens: list[int], repeats: int = 3) -> float:
    """Median time to evaluate ``tokens`` from an empty context."""
    times = []
    for _ in range(repeats):
        llm.reset()
        t0 = clock.perf_ns()
        llm.eval(tokens)
        times.append((clock.perf_ns() - t0) / 1e6)
    return float(np.median(times))


def decode(llm, tokens: list[int], grammar) -> tuple[float, float, str]:
    """(ms to the first token, ms per later token, text) for up to 40 greedy tokens."""
    llm.reset()
    t0 = clock.perf_ns()
    stamps, text = [], ""
    for chunk in llm.create_completion(tokens, max_tokens=40, temperature=0.0, top_k=1, stream=True, grammar=grammar):
        stamps.append((clock.perf_ns() - t0) / 1e6)
        text += chunk["choices"][0]["text"]
    gaps = np.diff(stamps)
    return stamps[0], float(gaps.mean()) if len(gaps) else 0.0, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=6,
                    help="how many answerable dev questions to profile (6 take about 5 min on 2 loaded cores)")
    ap.add_argument("--json-out", default=None, help="also write the JSON here")
    args = ap.parse_args()
    from llama_cpp import LlamaGrammar

    from vehicle_assist.advisory.slm import SLM
    from vehicle_assist.config import load_app
    from vehicle_assist.knowledge.retrieve import Retriever

    cfg = load_app()
    rows = [json.loads(x) for x in (paths.home() / "bench" / "data" / "questions.jsonl").read_text().splitlines() if x]
    rows = [r for r in rows if r["split"] == "dev" and r["answerable"] and r["question"]][: args.questions]
    retriever = Retriever.load(cfg.knowledge, progress=False, threads=cfg.runtime.threads.embedder)
    threads = cfg.runtime.threads.slm
    res = models.resolve("slm")
    out: dict = {"model": res.path.name, "threads": threads, "questions": len(rows), "prefill_ms": {}, "decode": {}}
    prompts_by_q = []
    for batch_threads in (1, 2):
        slm = SLM(models.load_slm(res, n_threads=threads, n_threads_batch=batch_threads), res.path.name)
        for budget in (150, 300):
            ms, n = [], []
            for r in rows:
                p = prompts.build(r["question"], retriever.search(r["question"]).passages, max_tokens=budget,
                                  count=slm.count_tokens)
                prefix, rest = slm._split_prompt(p)
                ms.append(prefill_ms(slm.llm, prefix + rest))
                n.append(len(prefix) + len(rest))
                if batch_threads == 1 and budget == 150:
                    prompts_by_q.append(p)
            out["prefill_ms"][f"batch_threads={batch_threads},budget={budget}"] = {"ms": med(ms), "tokens": med(n)}
        if batch_threads == 1:
            for mode in ("plain", "json"):
                first, per, lead = [], [], []
                for p in prompts_by_q:
                    grammar = (LlamaGrammar.from_json_schema(json.dumps(prompts.answer_schema(p.ids)), verbose=False)
                               if mode == "json" else None)
                    prefix, rest = slm._split_prompt(p)
                    f, g, text = decode(slm.llm, prefix + rest, grammar)
                    first.append(f)
                    per.append(g)
                    if mode == "json" and '"answer"' in text:
                        lead.append(len(slm.llm.tokenize(text[: text.index('"answer"') + 11].encode(), add_bos=False)))
                out["decode"][mode] = {"first_token_ms": med(first), "ms_per_token": med(per),
                                       "tokens_before_answer": med(lead) if mode == "json" else 0}
        del slm
    emit_json(out, args.json_out)
    print(" | ".join(f"prefill {k}: {v['ms']} ms ({v['tokens']} tok)" for k, v in out["prefill_ms"].items()), file=sys.stderr)
    print(" | ".join(f"{k}: first token {v['first_token_ms']} ms, {v['ms_per_token']} ms/token" for k, v in out["decode"].items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
