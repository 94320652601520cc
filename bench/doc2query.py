"""Document expansion with generated questions (doc2query), issue 15 ninth round: generation.

A local GGUF language model (llama-cpp-python) writes a few short, spoken-style driver questions
that each indexed chunk of the Highway Code answers. The text given to the model is the chunk
(section, title, text as indexed): only the Code, never a dev or test question.

    python bench/doc2query.py probe --model FILE [--n 5] [--prompt v1]   # tokens/s + read the output
    nice -n 5 python bench/doc2query.py generate --model FILE --out /work/d2q_cache/q.jsonl \
        --prompt v5 --k 3 --max-tokens 72 --max-words 120 --shuffle [--max-minutes 30]   # resumable cache
    python bench/doc2query.py filter --raw FILE --out FILE                 # general filters

Cache rows: {"key", "rule_id", "part", "model", "prompt", "raw", "questions", "seconds", "tokens"};
``key`` = sha256 of (chunk text, model file name + size, prompt id): a changed chunk, model or
prompt is generated again, an unchanged one is skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

PROMPTS = {
    "v1": ("Here is a passage from the UK Highway Code.\n\n{passage}\n\n"
           "Write {n} different short questions that a driver might ask out loud in the car, in "
           "everyday spoken words, which this passage answers. Do not copy the passage's wording. "
           "One question per line, nothing else."),
    "v2": ("Passage from the UK Highway Code:\n\"\"\"\n{passage}\n\"\"\"\n\n"
           "A driver asks the car's voice assistant a question, and the answer is in this passage. "
           "Write {n} such questions, each under 15 words, casual spoken English, the way a real "
           "driver would say it (not the passage's words). One per line, no numbering."),
    "v3": ("You help a car's voice assistant. Write questions a driver would say out loud whose answer "
           "is in the passage. Use I and my, everyday words, under 15 words each.\n\n"
           "Passage: Using the road. Fog. You MUST use headlights when visibility is seriously reduced, "
           "generally when you cannot see for more than 100 metres. You may also use front or rear fog "
           "lights but you MUST switch them off when visibility improves.\n"
           "Questions:\nwhen do I have to put my lights on in thick fog?\n"
           "can I leave my fog lights on once it clears up?\n"
           "how bad does the fog have to be before I need headlights?\n\n"
           "Passage: {passage}\nQuestions:"),
    "v4": ("Read this part of the UK Highway Code.\n\n{passage}\n\n"
           "A driver in the car asks a question and this text has the answer. Write {n} different "
           "questions like that, in the driver's own casual words (use \"I\" and \"my car\"), each "
           "under 15 words. Start them with words like: can I, do I have to, what should I do if, how "
           "far, how fast, when, what does ... mean. Write a numbered list of {n} questions."),
    "v5": ("Passage from the UK Highway Code:\n\"\"\"\n{passage}\n\"\"\"\n\n"
           "A driver asks the car's voice assistant a question, and the answer is in this passage. "
           "Write {n} such questions, each under 15 words, in plain spoken English from the driver's "
           "point of view (\"I\", \"my\"). Each must be a question this passage answers. "
           "Write a numbered list."),
}


def chunks() -> list[dict]:
    """The indexed chunks (knowledge/index/chunks.jsonl, as built)."""
    from vehicle_assist import paths

    path = paths.home() / "knowledge" / "index" / "chunks.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def passage_text(c: dict) -> str:
    from vehicle_assist.knowledge.corpus import linearize_tables

    head = c["section"] if c["section"] == c["title"] else f"{c['section']}. {c['title']}"
    return f"{head}.\n{linearize_tables(c['text'])}"


def key_of(c: dict, model: Path, prompt: str) -> str:
    h = hashlib.sha256(passage_text(c).encode())
    h.update(f"|{model.name}:{model.stat().st_size}|{prompt}|{PROMPTS[prompt]}".encode())
    return h.hexdigest()[:24]


_NUM = re.compile(r"^\s*(?:(?:[-*•]|\d+[.):]|q\d*[.:]|question\s*\d*[.:])\s*)+", re.I)


def split_questions(raw: str) -> list[str]:
    out = []
    for line in raw.splitlines():
        line = _NUM.sub("", line).strip().strip('"').strip()
        if line:
            out.append(line)
    return out


def load_model(model: Path, threads: int, n_ctx: int = 1024):
    from llama_cpp import Llama

    return Llama(model_path=str(model), n_ctx=n_ctx, n_threads=threads, seed=0, verbose=False)


def generate_one(llm, c: dict, prompt: str, n: int, max_tokens: int, seed: int, max_words: int = 180
                 ) -> tuple[str, int, float]:
    passage = passage_text(c)
    words = passage.split()
    if len(words) > max_words:  # keep prompt + answer inside the context window (and the time box)
        passage = " ".join(words[:max_words])
    msg = PROMPTS[prompt].format(passage=passage, n=n)
    t0 = time.perf_counter()
    out = llm.create_chat_completion(messages=[{"role": "user", "content": msg}], max_tokens=max_tokens,
                                     temperature=0.7, top_p=0.9, repeat_penalty=1.1, seed=seed)
    dt = time.perf_counter() - t0
    return out["choices"][0]["message"]["content"], int(out["usage"]["completion_tokens"]), dt


def cmd_probe(args) -> None:
    llm = load_model(Path(args.model), args.threads)
    cs = chunks()
    step = max(1, len(cs) // args.n)
    tok = sec = 0.0
    for c in cs[args.offset::step][:args.n]:
        raw, n_tok, dt = generate_one(llm, c, args.prompt, args.k, args.max_tokens, seed=0)
        tok += n_tok
        sec += dt
        print(f"=== {c['rule_id']} ({n_tok} tokens, {dt:.1f} s)\n{passage_text(c)[:300]}\n--- \n{raw}\n")
    print(f"{tok:.0f} tokens in {sec:.1f} s: {tok / max(sec, 1e-9):.1f} tokens/s (incl. prompt)")


def cmd_generate(args) -> None:
    model = Path(args.model)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            if line.strip():
                done.add(json.loads(line)["key"])
    todo = [c for c in chunks() if key_of(c, model, args.prompt) not in done]
    if args.shuffle:  # a time-boxed run then covers the whole Code evenly, not its first sections
        import random

        random.Random(0).shuffle(todo)
    print(f"{len(done)} cached, {len(todo)} to generate", file=sys.stderr, flush=True)
    llm = load_model(model, args.threads)
    t_start = time.perf_counter()
    with out.open("a", encoding="utf-8") as f:
        for i, c in enumerate(todo):
            if time.perf_counter() - t_start > args.max_minutes * 60:
                print(f"time box reached after {i} chunks", file=sys.stderr, flush=True)
                break
            raw, n_tok, dt = generate_one(llm, c, args.prompt, args.k, args.max_tokens, seed=i,
                                          max_words=args.max_words)
            row = {"key": key_of(c, model, args.prompt), "rule_id": c["rule_id"], "part": c["part"],
                   "model": model.name, "prompt": args.prompt, "raw": raw,
                   "questions": split_questions(raw), "seconds": round(dt, 2), "tokens": n_tok}
            f.write(json.dumps(row) + "\n")
            f.flush()
            if i % 10 == 0:
                el = time.perf_counter() - t_start
                print(f"{i + 1}/{len(todo)} {el:.0f} s, last {n_tok} tokens {dt:.1f} s", file=sys.stderr, flush=True)


# --- filtering (general rules, no per-case tables) ---------------------------------------------

_WORD = re.compile(r"[a-z0-9']+")
_STOP = set("""a an the and or but if of to in on at by for with from as is are was were be been being do does did
can could should would will shall may might must i me my we our you your it its this that these those there
what when where which who whom why how not no yes any some all so than then too very just about into out up
down over under again am has have had having get got say tell""".split())


def content_words(text: str) -> set[str]:
    from vehicle_assist.knowledge.normalize import bm25_tokens

    return {w for w in bm25_tokens(text) if w not in _STOP and len(w) > 2}


_CODE_REF = re.compile(r",?\s*(?:in|according to|under|of|from|by)\s+(?:the\s+)?(?:uk\s+)?highway\s+code\b", re.I)
_ECHO = re.compile(r"\b(?:passage|voice assistant|article|this text|this section|highway code)\b", re.I)


def keep_question(q: str, passage: str, seen: set[str]) -> str | None:
    """The question cleaned, or None when degenerate: length, repetition, no question shape, or no
    content word shared with the passage (general rules)."""
    q = " ".join(q.split()).strip()
    q = re.sub(r"^(?:driver|q|question|answer)\s*:\s*", "", q, flags=re.I)
    q = _CODE_REF.sub("", q).strip()  # "... in the UK Highway Code?": the prompt's words, not a driver's
    if _ECHO.search(q):  # the question is about the prompt (the passage, the assistant), not the road
        return None
    words = _WORD.findall(q.lower())
    if not 3 <= len(words) <= 25:
        return None
    if len(set(words)) < 0.6 * len(words):  # repeated words: a degenerate loop
        return None
    if not q.endswith("?"):
        return None
    low = " ".join(words)
    if low in seen:
        return None
    if not content_words(q) & content_words(passage):
        return None
    seen.add(low)
    return q


def filtered(rows: list[dict], chunk_list: list[dict], max_per_chunk: int = 5) -> dict[tuple[str, int], list[str]]:
    by_key = {(c["rule_id"], c["part"]): c for c in chunk_list}
    out: dict[tuple[str, int], list[str]] = {}
    for r in rows:
        c = by_key.get((r["rule_id"], r["part"]))
        if c is None:
            continue
        seen: set[str] = set()
        kept = [k for k in (keep_question(q, passage_text(c), seen) for q in r["questions"]) if k]
        out[(r["rule_id"], r["part"])] = kept[:max_per_chunk]
    return out


def cmd_filter(args) -> None:
    rows = [json.loads(line) for line in Path(args.raw).read_text(encoding="utf-8").splitlines() if line.strip()]
    cs = chunks()
    kept = filtered(rows, cs, args.max_per_chunk)
    n_raw = sum(len(r["questions"]) for r in rows)
    n_kept = sum(len(v) for v in kept.values())
    with Path(args.out).open("w", encoding="utf-8") as f:
        for (rid, part), qs in sorted(kept.items()):
            f.write(json.dumps({"rule_id": rid, "part": part, "questions": qs}) + "\n")
    tok = sum(r["tokens"] for r in rows)
    sec = sum(r["seconds"] for r in rows)
    print(json.dumps({"chunks": len(rows), "raw_questions": n_raw, "kept": n_kept,
                      "chunks_with_none": sum(1 for v in kept.values() if not v),
                      "tokens": tok, "seconds": round(sec, 1), "tokens_per_s": round(tok / max(sec, 1e-9), 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("probe", "generate"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        p.add_argument("--prompt", default="v1", choices=sorted(PROMPTS))
        p.add_argument("--k", type=int, default=4, help="questions asked for per chunk")
        p.add_argument("--max-tokens", type=int, default=96)
        p.add_argument("--threads", type=int, default=2)
    sub.choices["probe"].add_argument("--n", type=int, default=5)
    sub.choices["probe"].add_argument("--offset", type=int, default=0)
    sub.choices["generate"].add_argument("--out", required=True)
    sub.choices["generate"].add_argument("--max-minutes", type=float, default=30)
    sub.choices["generate"].add_argument("--max-words", type=int, default=180, help="passage words in the prompt")
    sub.choices["generate"].add_argument("--shuffle", action="store_true", help="chunks in a seeded random order")
    p = sub.add_parser("filter")
    p.add_argument("--raw", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-per-chunk", type=int, default=5)
    args = ap.parse_args()
    {"probe": cmd_probe, "generate": cmd_generate, "filter": cmd_filter}[args.cmd](args)


if __name__ == "__main__":
    main()
