#!/usr/bin/python3
"""Generates tests/fixtures/train_reference.json: reference values of regmix-train's model,
computed once with PyTorch in float64 and committed. Run with Debian's python3 (it has torch):

    /usr/bin/python3 tests/train/make_reference.py > tests/fixtures/train_reference.json

The model, its parameter order and the weights are defined independently of the C code here:
parameters are one flat vector in the order of train/model.h (wte; per layer attn_norm, wqkv,
wo, mlp_norm, w13, w2; final_norm; lm_head) and element k of it is
    base + 0.1 * sin(0.37 * k + 1.0),   base = 1 for norm weights, 0 otherwise.
Tokens of sequence s at position i are (7 * s + 3 * i * i + i + 1) % vocab. The fixture holds
the loss, gradient entries at listed offsets, and the losses of three AdamW steps
(lr 1e-2, betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only, clip 1.0).
"""
import json
import math

import torch

CFG = dict(layers=2, heads=2, dim=16, ffn=24, context=8, vocab=32, batch=2)
LR, WD, CLIP, STEPS = 1e-2, 0.1, 1.0, 3


def layout(c):
    d, f, v = c["dim"], c["ffn"], c["vocab"]
    shapes = [("wte", (v, d), True)]
    for l in range(c["layers"]):
        shapes += [(f"l{l}.attn_norm", (d,), False), (f"l{l}.wqkv", (3 * d, d), True),
                   (f"l{l}.wo", (d, d), True), (f"l{l}.mlp_norm", (d,), False),
                   (f"l{l}.w13", (2 * f, d), True), (f"l{l}.w2", (d, f), True)]
    shapes += [("final_norm", (d,), False), ("lm_head", (v, d), True)]
    return shapes


def rmsnorm(x, w):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5) * w


def rope(x, t, hd):
    # x (B, H, T, hd), "rotate half" pairing (i, i + hd/2), base 10000
    half = hd // 2
    freq = 10000.0 ** (-2.0 * torch.arange(half, dtype=torch.float64) / hd)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * freq[None, :]
    cos, sin = torch.cos(ang), torch.sin(ang)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


def forward(p, tokens, c):
    d, h, f, t = c["dim"], c["heads"], c["ffn"], c["context"]
    hd = d // h
    inp, tgt = tokens[:, :-1], tokens[:, 1:]
    bsz = inp.shape[0]
    x = p["wte"][inp]
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    for l in range(c["layers"]):
        a = rmsnorm(x, p[f"l{l}.attn_norm"])
        qkv = a @ p[f"l{l}.wqkv"].T
        q, k, v = qkv.split(d, dim=-1)
        q, k, v = [z.view(bsz, t, h, hd).transpose(1, 2) for z in (q, k, v)]
        q, k = rope(q, t, hd), rope(k, t, hd)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(~mask, float("-inf"))
        o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(bsz, t, d)
        x = x + o @ p[f"l{l}.wo"].T
        m = rmsnorm(x, p[f"l{l}.mlp_norm"])
        g, u = (m @ p[f"l{l}.w13"].T).split(f, dim=-1)
        x = x + (torch.nn.functional.silu(g) * u) @ p[f"l{l}.w2"].T
    x = rmsnorm(x, p["final_norm"])
    logits = x @ p["lm_head"].T
    return torch.nn.functional.cross_entropy(logits.reshape(-1, c["vocab"]), tgt.reshape(-1))


def main():
    c = CFG
    shapes = layout(c)
    total = sum(math.prod(s) for _, s, _ in shapes)
    k = torch.arange(total, dtype=torch.float64)
    flat = 0.1 * torch.sin(0.37 * k + 1.0)
    params, offsets, off = {}, {}, 0
    for name, shape, is_matrix in shapes:
        n = math.prod(shape)
        base = 0.0 if is_matrix else 1.0
        params[name] = (flat[off:off + n] + base).view(shape).clone().requires_grad_(True)
        offsets[name] = off
        off += n
    tokens = torch.tensor([[(7 * s + 3 * i * i + i + 1) % c["vocab"] for i in range(c["context"] + 1)]
                           for s in range(c["batch"])])

    loss = forward(params, tokens, c)
    loss.backward()
    grads = []
    for name, shape, _ in shapes:
        g = params[name].grad.reshape(-1)
        n = g.numel()
        for j in sorted({0, n // 3, n // 2, n - 1, int(g.abs().argmax())}):
            grads.append({"tensor": name, "offset": offsets[name] + j, "value": g[j].item()})

    decay = [params[n] for n, _, m in shapes if m]
    no_decay = [params[n] for n, _, m in shapes if not m]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.95), eps=1e-8)
    step_losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        l = forward(params, tokens, c)
        l.backward()
        step_losses.append(l.item())
        torch.nn.utils.clip_grad_norm_(list(params.values()), CLIP)
        opt.step()
    final = forward(params, tokens, c).item()

    out = {"generator": "tests/train/make_reference.py (PyTorch %s, float64)" % torch.__version__,
           "config": c, "params": total, "lr": LR, "weight_decay": WD, "clip": CLIP,
           "loss": loss.item(), "grads": grads, "step_losses": step_losses,
           "loss_after_steps": final}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    main()
