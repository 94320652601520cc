"""Experiment (issue 15, fourth round): fine-tune MiniLM as the *query* tower on the Code's own
pseudo-queries, the chunk vectors of the index kept fixed, and score the dev split.

    python bench/finetune_query_encoder.py [--epochs 2] [--lr 3e-5] [--batch 64] [--threads 2]

Training data: the adapter's pseudo-queries (knowledge/adapter.py: every indexed rule's title,
"section. title" and sentences, each labelled with its rule); no evaluation question. Loss: softmax
over the cosines with every chunk of the index at temperature 0.05, the rule's chunks as positives
(the adapter's loss, with the whole encoder trainable instead of a linear map). torch on CPU: an
offline experiment, never imported by the runtime. Writes the dev query vectors of the tuned model
to ``--out`` (npz, read by ``bench/rank_experiments.py run ft``) and prints dev rule first / top 3
from the cached scorer. Reads the dev split only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import rank_experiments as rx  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-words", type=int, default=0,
                    help="train only on pseudo-queries of at most this many words (titles, short rows); 0 = all")
    ap.add_argument("--cache", type=Path, default=rx.CACHE)
    ap.add_argument("--out", type=Path, default=Path("/tmp/va_ft_query.npz"))
    args = ap.parse_args(argv)
    import torch
    from sentence_transformers import SentenceTransformer

    from vehicle_assist import models

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d = rx.Data(args.cache)
    model = SentenceTransformer(str(models.resolve("embedder").path), device="cpu")
    chunks = torch.tensor(d.vectors, dtype=torch.float32)
    keep = [i for i, t in enumerate(d.ptexts.tolist()) if not args.max_words or len(t.split()) <= args.max_words]
    member = torch.tensor(rx.membership([d.plabels[i] for i in keep], len(d.rules))[:, d.chunk_label])
    texts = [str(d.ptexts[i]) for i in keep]
    print(f"{len(texts)} pseudo-queries", file=sys.stderr)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    rng = np.random.default_rng(0)
    t0 = time.time()
    model.train()
    for epoch in range(args.epochs):
        order = rng.permutation(len(texts))
        total = 0.0
        for start in range(0, len(order), args.batch):
            idx = order[start:start + args.batch]
            feats = model.tokenize([texts[i] for i in idx])
            emb = model(feats)["sentence_embedding"]
            emb = torch.nn.functional.normalize(emb, dim=1)
            logits = emb @ chunks.T / 0.05
            logp = torch.log_softmax(logits, dim=1)
            pos = member[idx]
            loss = -(torch.logsumexp(logp.masked_fill(~pos, -1e9), dim=1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            if (start // args.batch) % 10 == 0:
                print(f"  step {start // args.batch}: loss {float(loss.detach()):.3f} ({time.time() - t0:.0f} s)",
                      file=sys.stderr, flush=True)
        print(f"epoch {epoch + 1}: loss {total / len(texts):.3f} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    model.eval()
    with torch.inference_mode():
        qv = model.encode(d.queries.tolist(), normalize_embeddings=True, convert_to_numpy=True)
    np.savez(args.out, qv=qv)
    rows = np.arange(len(qv))
    for w in (0.5, 0.75, 1.0):
        mixed = (1 - w) * d.qv + w * qv
        print(f"fine-tuned query tower, weight {w}: {rx.summary(rx.ranks(d, rx.rule_scores(d, mixed, d.lex), rows))}")
    print(f"train {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
