#!/usr/bin/env python3
"""Independent oracle for the random-weight rule ("splitmix-uniform v1",
shared/docs/random-weights.md), written from the document alone in pure Python 3 (stdlib),
so the C tests do not compare genbench against itself.

usage: random_weights_ref.py CONFIG.json SEED
prints one line per tensor, in checkpoint order: NAME FNV1A64 (16 lowercase hex digits of
the FNV-1a 64 hash of the tensor's little-endian bf16 bytes).

usage: random_weights_ref.py --check-refs REFS_DIR FIXTURES_DIR [MAX_ELEMENTS]
checks the oracle itself against the reference files made outside genbench: for every
fixture model, the tensor list (names, shapes, order) and the hashes of all tensors of at
most MAX_ELEMENTS (default 20000) elements; exits 1 on any difference.
Meant for tiny configs (it runs about a million elements per second)."""
import json
import math
import struct
import sys

M64 = (1 << 64) - 1


def fnv1a64(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def f32(x):
    """Round a Python float (double) to the nearest float32, ties to even."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def tensor_list(cfg):
    """(name, shape, kind, fan_in) in Hugging Face checkpoint order."""
    mt = cfg["model_type"]
    out = []
    if mt == "gpt2":
        H = cfg.get("n_embd", 768)
        L = cfg.get("n_layer", 12)
        P = cfg.get("n_positions", 1024)
        V = cfg.get("vocab_size", 50257)
        inner = cfg.get("n_inner") or 4 * H
        out.append(("transformer.wte.weight", [V, H], "embedding", 0))
        out.append(("transformer.wpe.weight", [P, H], "embedding", 0))
        for i in range(L):
            p = "transformer.h.%d." % i
            out += [
                (p + "ln_1.weight", [H], "norm", 0),
                (p + "ln_1.bias", [H], "bias", 0),
                (p + "attn.c_attn.weight", [H, 3 * H], "matrix", H),
                (p + "attn.c_attn.bias", [3 * H], "bias", 0),
                (p + "attn.c_proj.weight", [H, H], "matrix", H),
                (p + "attn.c_proj.bias", [H], "bias", 0),
                (p + "ln_2.weight", [H], "norm", 0),
                (p + "ln_2.bias", [H], "bias", 0),
                (p + "mlp.c_fc.weight", [H, inner], "matrix", H),
                (p + "mlp.c_fc.bias", [inner], "bias", 0),
                (p + "mlp.c_proj.weight", [inner, H], "matrix", inner),
                (p + "mlp.c_proj.bias", [H], "bias", 0),
            ]
        out.append(("transformer.ln_f.weight", [H], "norm", 0))
        out.append(("transformer.ln_f.bias", [H], "bias", 0))
        return out
    if mt not in ("llama", "mistral", "qwen2", "qwen3"):
        raise SystemExit("unsupported model_type " + mt)
    H = cfg["hidden_size"]
    I = cfg["intermediate_size"]
    L = cfg["num_hidden_layers"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    V = cfg["vocab_size"]
    out.append(("model.embed_tokens.weight", [V, H], "embedding", 0))
    for i in range(L):
        p = "model.layers.%d." % i
        out.append((p + "input_layernorm.weight", [H], "norm", 0))
        out.append((p + "self_attn.q_proj.weight", [nh * hd, H], "matrix", H))
        out.append((p + "self_attn.k_proj.weight", [nkv * hd, H], "matrix", H))
        out.append((p + "self_attn.v_proj.weight", [nkv * hd, H], "matrix", H))
        if mt == "qwen2":
            out.append((p + "self_attn.q_proj.bias", [nh * hd], "bias", 0))
            out.append((p + "self_attn.k_proj.bias", [nkv * hd], "bias", 0))
            out.append((p + "self_attn.v_proj.bias", [nkv * hd], "bias", 0))
        if mt == "qwen3":
            out.append((p + "self_attn.q_norm.weight", [hd], "norm", 0))
            out.append((p + "self_attn.k_norm.weight", [hd], "norm", 0))
        out.append((p + "self_attn.o_proj.weight", [H, nh * hd], "matrix", nh * hd))
        out.append((p + "post_attention_layernorm.weight", [H], "norm", 0))
        out.append((p + "mlp.gate_proj.weight", [I, H], "matrix", H))
        out.append((p + "mlp.up_proj.weight", [I, H], "matrix", H))
        out.append((p + "mlp.down_proj.weight", [H, I], "matrix", I))
    out.append(("model.norm.weight", [H], "norm", 0))
    if not cfg.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", [V, H], "matrix", H))
    return out


def tensor_hash(name, shape, kind, fan_in, seed):
    n = 1
    for d in shape:
        n *= d
    key = fnv1a64(name.encode("utf-8")) ^ seed
    if kind == "matrix":
        scale = f32(math.sqrt(3.0 / fan_in))
    elif kind == "norm":
        scale = 0.25
    else:
        scale = f32(0.1)
    h = 0xCBF29CE484222325
    gamma = 0x9E3779B97F4A7C15
    for i in range(n):
        z = (key + (i + 1) * gamma) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        z = z ^ (z >> 31)
        r = ((z >> 40) - (1 << 23)) / float(1 << 23)  # exact
        # float32 products/sums: the double result of two float32 operands is exact here
        # (24 x 24 bits; 1 + k/2^25), so one rounding to float32 equals float32 arithmetic.
        if kind == "norm":
            v = f32(1.0 + f32(r * scale))
        else:
            v = f32(r * scale)
        bits = f32_bits(v)
        b16 = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF
        h = ((h ^ (b16 & 0xFF)) * 0x100000001B3) & M64
        h = ((h ^ (b16 >> 8)) * 0x100000001B3) & M64
    return h


def check_refs(refs_dir, fixtures_dir, max_elems):
    import os

    bad = checked = 0
    for name in sorted(os.listdir(fixtures_dir)):
        with open(os.path.join(fixtures_dir, name, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        with open(os.path.join(fixtures_dir, name, "fixture.json"), encoding="utf-8") as f:
            seed = json.load(f).get("seed") or 0
        with open(os.path.join(refs_dir, name + ".ref.json"), encoding="utf-8") as f:
            ref = json.load(f)["tensors"]
        ours = tensor_list(cfg)
        if [(t[0], t[1]) for t in ours] != [(t["name"], t["shape"]) for t in ref]:
            print("%s: tensor list differs from the reference" % name)
            bad += 1
            continue
        for (tname, shape, kind, fan_in), r in zip(ours, ref):
            n = 1
            for d in shape:
                n *= d
            if n > max_elems:
                continue
            got = "%016x" % tensor_hash(tname, shape, kind, fan_in, seed)
            checked += 1
            if got != r["fnv1a64"]:
                print("%s: %s: expected %s, got %s" % (name, tname, r["fnv1a64"], got))
                bad += 1
    print("oracle vs references: %d tensors checked, %d differences" % (checked, bad))
    return 1 if bad or not checked else 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--check-refs":
        limit = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
        sys.exit(check_refs(sys.argv[2], sys.argv[3], limit))
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    seed = int(sys.argv[2]) & M64
    for name, shape, kind, fan_in in tensor_list(cfg):
        print("%s %016x" % (name, tensor_hash(name, shape, kind, fan_in, seed)))


if __name__ == "__main__":
    main()
