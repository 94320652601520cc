"""The decoder prompt's domain vocabulary, derived rather than hand-written: the words of the
Highway Code that Whisper finds rare (its tokenizer splits them into two or more pieces, e.g.
"carriageway", "roundabout", "pelican") and that recur in the Code, plus one spoken form of each
voice command (configs/intents.yaml's ``examples``).

    python -m vehicle_assist.speech.prompt [--terms 20]     # prints the prompt for speech.asr.initial_prompt

Offline and deterministic: the index's chunks (knowledge/index/chunks.jsonl) and the ASR model's own
tokenizer.json. Not a list of evaluation phrases: nothing here reads bench/data.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

_WORD = re.compile(r"(?<![A-Za-z])[a-z]{4,}(?![A-Za-z])")  # lower-case in the text: no acronyms, no place names


def domain_terms(texts: Iterable[str], pieces: Callable[[str], int], n: int = 20, min_docs: int = 5) -> list[str]:
    """Pure: the ``n`` words written in lower case in at least ``min_docs`` texts that ``pieces``
    (tokens per word, with its leading space) splits into two or more, most documents first; a
    plural is dropped when its singular is in (and the other way round)."""
    df: Counter[str] = Counter()
    for t in texts:
        df.update(set(_WORD.findall(t)))
    out: list[str] = []
    for w, k in sorted(df.items(), key=lambda kv: (-kv[1], kv[0])):
        if k < min_docs or len(out) >= n:
            break
        if (w.endswith("s") and w[:-1] in out) or f"{w}s" in out:
            continue
        if pieces(w) >= 2:
            out.append(w)
    return out


def domain_prompt(terms: list[str], commands: list[str]) -> str:
    """The prompt text: the terms, then the commands."""
    return f"Highway Code questions: {', '.join(terms)}. Commands: {', '.join(commands)}."


def build(n_terms: int = 20) -> str:
    """The prompt from this install's index, the ASR model's tokenizer and the intents table."""
    import tokenizers
    import yaml

    from vehicle_assist import models, paths

    tok = tokenizers.Tokenizer.from_file(str(Path(models.resolve("asr").path) / "tokenizer.json"))
    chunks = paths.home() / "knowledge" / "index" / "chunks.jsonl"
    texts = [json.loads(line)["text"] for line in chunks.read_text().splitlines() if line.strip()]
    table = yaml.safe_load((paths.home() / "configs" / "intents.yaml").read_text())
    commands = [examples[0] for examples in table["examples"].values()]
    terms = domain_terms(texts, lambda w: len(tok.encode(" " + w, add_special_tokens=False).ids), n_terms)
    return domain_prompt(terms, commands)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terms", type=int, default=20)
    print(build(ap.parse_args().terms))


if __name__ == "__main__":
    main()
