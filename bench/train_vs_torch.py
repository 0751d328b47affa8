#!/usr/bin/python3
"""bench/train_vs_torch.py: regmix-train (CPU backend) against PyTorch on the same model, side by
side, on the same machine and thread count.

Both train the same Llama-style decoder (RMSNorm, RoPE, SwiGLU, untied head, AdamW with clipping)
on the same random tokens for the same number of steps, at two shapes: "small" (2 layers, 4 heads,
d 128, ffn 512) and "wide" (4 layers, 8 heads, d 256, ffn 1024), both context 256, vocab 256,
batch 8. Each round runs regmix-train, then PyTorch, then (with --openblas) regmix-train with
REGMIX_TRAIN_GEMM=openblas, back to back in the same minute; the figure compared is each
system's whole-run tokens per second (every step, the first included: regmix-train's own result
line, PyTorch timed the same way), and the ratio is taken per round and summarised by its median
over the rounds. Also printed per round: steady-state tokens/s (after the first step) and tokens
per CPU second (user + system: on a machine shared with other work, wall-clock figures partly
measure the other work; regmix-train's CPU time includes its start-up), and regmix-train's MFU
against the sgemm peak it measures itself after training.

Run with Debian's python3, which has torch (python3-torch):
    /usr/bin/python3 bench/train_vs_torch.py --train build/train/regmix-train \
        --sgemm build/bench/sgemm_peak [--threads 2] [--steps 8] [--rounds 5] [--proxy]
--proxy adds the paper's 1M proxy shape (2 layers, 8 heads, d 256, ffn 512, context 2048,
vocab 50432) for a few steps, regmix-train only.
"""
import argparse
import json
import math
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time

SMALL = dict(layers=2, heads=4, dim=128, ffn=512, context=256, vocab=256, batch=8)
WIDE = dict(layers=4, heads=8, dim=256, ffn=1024, context=256, vocab=256, batch=8)
PROXY = dict(layers=2, heads=8, dim=256, ffn=512, context=2048, vocab=50432, batch=8)


def flops_per_token(c):
    # Same count as train/model.c: 6 x (matrix multiply-adds + causal attention) per token.
    d, f, t = c["dim"], c["ffn"], c["context"]
    return 6.0 * (c["layers"] * (4 * d * d + 3 * f * d + t * d) + c["vocab"] * d)


def write_shard(path, vocab, n, seed):
    import random
    rnd = random.Random(seed)
    toks = [rnd.randrange(vocab) for _ in range(n)]
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *([20240520, 1, n] + [0] * 253)))
        f.write(struct.pack("<%dH" % n, *toks))


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_regmix(binary, c, steps, threads, shard, micro, gemm=None):
    """The result line of one run (whole-run and steady tokens/s, MFU...) plus its CPU time."""
    args = [binary, "--threads", str(threads), "--steps", str(steps), "--lr", "4e-4",
            "--train", "r=" + shard, "--eval-batches", "0",
            "--progress-fd", "1", "--micro-batch", str(micro)]
    for k in ("layers", "heads", "dim", "ffn", "context", "vocab", "batch"):
        args += ["--" + k, str(c[k])]
    env = dict(os.environ)
    if gemm:
        env["REGMIX_TRAIN_GEMM"] = gemm
    c0 = child_cpu()
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout
    cpu = child_cpu() - c0
    ev = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    res = [e for e in ev if e["event"] == "result"][-1]
    st = [e for e in ev if e["event"] == "step"]
    res["last_loss"] = st[-1]["loss"]
    res["tokens_per_cpu_second"] = res["tokens"] / max(cpu, 1e-9)
    return res


def run_torch(c, steps, threads):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    d, h, f, t, v, L = c["dim"], c["heads"], c["ffn"], c["context"], c["vocab"], c["layers"]
    hd = d // h
    std = math.sqrt(2.0 / (5 * d))

    def mat(o, i, s=std):
        return (torch.randn(o, i) * s).requires_grad_(True)

    P = {"wte": mat(v, d), "lm": mat(v, d), "nf": torch.ones(d, requires_grad=True)}
    for l in range(L):
        P[f"n1{l}"] = torch.ones(d, requires_grad=True)
        P[f"n2{l}"] = torch.ones(d, requires_grad=True)
        P[f"qkv{l}"] = mat(3 * d, d)
        P[f"wo{l}"] = mat(d, d, 1 / math.sqrt(d) / L)
        P[f"w13{l}"] = mat(2 * f, d)
        P[f"w2{l}"] = mat(d, f, 1 / math.sqrt(d) / L)
    half = hd // 2
    freq = 10000.0 ** (-2.0 * torch.arange(half) / hd)
    ang = torch.arange(t)[:, None] * freq[None, :]
    cos, sin = torch.cos(ang), torch.sin(ang)

    def rms(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5) * w

    def rope(x):
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    def loss_fn(tok):
        inp, tgt = tok[:, :-1], tok[:, 1:]
        bsz = inp.shape[0]
        x = P["wte"][inp]
        for l in range(L):
            q, k, vv = (rms(x, P[f"n1{l}"]) @ P[f"qkv{l}"].T).split(d, dim=-1)
            q, k, vv = [z.view(bsz, t, h, hd).transpose(1, 2) for z in (q, k, vv)]
            o = F.scaled_dot_product_attention(rope(q), rope(k), vv, is_causal=True) \
                if hasattr(F, "scaled_dot_product_attention") else None
            if o is None:
                s = (rope(q) @ rope(k).transpose(-1, -2)) / math.sqrt(hd)
                s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
                o = torch.softmax(s, -1) @ vv
            x = x + o.transpose(1, 2).reshape(bsz, t, d) @ P[f"wo{l}"].T
            g, u = (rms(x, P[f"n2{l}"]) @ P[f"w13{l}"].T).split(f, dim=-1)
            x = x + (F.silu(g) * u) @ P[f"w2{l}"].T
        logits = rms(x, P["nf"]) @ P["lm"].T
        return F.cross_entropy(logits.reshape(-1, v), tgt.reshape(-1))

    decay = [p for k, p in P.items() if p.dim() == 2]
    nodecay = [p for k, p in P.items() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": nodecay, "weight_decay": 0.0}], lr=4e-4,
                            betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(1)
    times, cpus = [], []
    for _ in range(steps):
        tok = torch.randint(0, v, (c["batch"], t + 1), generator=gen)
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(tok)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    tokens = c["batch"] * t * (steps - 1)
    return {"tokens_per_second": c["batch"] * t * steps / sum(times),
            "steady_tokens_per_second": tokens / sum(times[1:]),
            "tokens_per_cpu_second": c["batch"] * t * steps / sum(cpus),
            "last_loss": loss.item(), "version": torch.__version__}


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def bench_shape(name, c, a, shard):
    rows = []
    for r in range(a.rounds):
        ours = run_regmix(a.train, c, a.steps, a.threads, shard, a.micro_batch)
        theirs = run_torch(c, a.steps, a.threads)
        row = {"shape": name, "round": r + 1,
               "regmix_tps": round(ours["tokens_per_second"], 1),
               "torch_tps": round(theirs["tokens_per_second"], 1),
               "ratio": round(ours["tokens_per_second"] / theirs["tokens_per_second"], 3),
               "regmix_steady_tps": round(ours["steady_tokens_per_second"], 1),
               "torch_steady_tps": round(theirs["steady_tokens_per_second"], 1),
               "ratio_cpu": round(ours["tokens_per_cpu_second"]
                                  / theirs["tokens_per_cpu_second"], 3),
               "regmix_mfu": round(ours.get("mfu", 0.0), 3),
               "regmix_gemm_peak": round(ours.get("gemm_peak_gflops", 0.0), 1),
               "kernels": ours.get("kernels"), "gemm": ours.get("gemm"),
               "loss": [round(ours["last_loss"], 4), round(theirs["last_loss"], 4)],
               "torch": theirs["version"], "load": round(os.getloadavg()[0], 2)}
        if a.openblas:
            ob = run_regmix(a.train, c, a.steps, a.threads, shard, a.micro_batch, "openblas")
            row["regmix_openblas_tps"] = round(ob["tokens_per_second"], 1)
            row["ratio_openblas"] = round(ob["tokens_per_second"]
                                          / theirs["tokens_per_second"], 3)
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = {"shape": name, "dims": c, "threads": a.threads, "rounds": a.rounds,
               "steps": a.steps,
               "median_ratio": round(median([x["ratio"] for x in rows]), 3),
               "median_ratio_steady": round(median([x["regmix_steady_tps"] / x["torch_steady_tps"]
                                                    for x in rows]), 3),
               "median_ratio_cpu": round(median([x["ratio_cpu"] for x in rows]), 3),
               "median_regmix_tps": round(median([x["regmix_tps"] for x in rows]), 1),
               "median_torch_tps": round(median([x["torch_tps"] for x in rows]), 1),
               "median_mfu": round(median([x["regmix_mfu"] for x in rows]), 3)}
    if a.openblas:
        summary["median_ratio_openblas"] = round(median([x["ratio_openblas"] for x in rows]), 3)
    print(json.dumps(summary), flush=True)
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True, help="path of the regmix-train binary")
    ap.add_argument("--sgemm", help="path of bench/sgemm_peak (OpenBLAS's peak, for reference)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--shapes", default="small,wide", help="comma list of small, wide")
    ap.add_argument("--proxy", action="store_true", help="also time the paper's proxy shape")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (median kept)")
    ap.add_argument("--openblas", action=argparse.BooleanOptionalAction, default=True,
                    help="also run regmix-train with REGMIX_TRAIN_GEMM=openblas each round "
                         "(PyTorch's matrix-product library)")
    ap.add_argument("--wait-policy", default="passive", choices=["passive", "active"],
                    help="OMP_WAIT_POLICY for both systems (both use libgomp; default passive, "
                         "regmix-train's own default)")
    a = ap.parse_args()
    # Set before torch is imported: libgomp reads it when it loads.
    os.environ["OMP_WAIT_POLICY"] = a.wait_policy
    shapes = {"small": SMALL, "wide": WIDE}
    with tempfile.TemporaryDirectory() as tmp:
        shard = os.path.join(tmp, "rand.bin")
        write_shard(shard, SMALL["vocab"], 300000, 1)
        for name in a.shapes.split(","):
            bench_shape(name, shapes[name], a, shard)
        if a.sgemm:
            peak = max(json.loads(subprocess.run([a.sgemm, "1024", str(a.threads), "5"],
                                                 check=True, capture_output=True,
                                                 text=True).stdout)["gflops"]
                       for _ in range(3))
            print(json.dumps({"openblas_sgemm_peak_gflops": peak, "threads": a.threads}))
        if a.proxy:
            shard = os.path.join(tmp, "proxy.bin")
            write_shard(shard, PROXY["vocab"], 200000, 2)
            res = run_regmix(a.train, PROXY, 3, a.threads, shard, 1)
            print(json.dumps({"system": "regmix-train", "shape": PROXY, "threads": a.threads,
                              "tokens_per_second": round(res["tokens_per_second"], 1),
                              "steady_tokens_per_second":
                                  round(res["steady_tokens_per_second"], 1),
                              "gflops": round(res["steady_tokens_per_second"]
                                              * flops_per_token(PROXY) / 1e9, 2),
                              "mfu": res.get("mfu"), "last_loss": res["last_loss"]}))


if __name__ == "__main__":
    sys.exit(main())
