# Reference check: does a plain PyTorch 2-layer transformer of tiny-mqar's size learn our MQAR
# layout (same distribution as src/data/synthetic/mqar.rs) in the step budget where ours stalls?
# conv=K adds the short causal convolution of model.short_conv (h + sum_j w_j * h[t-j], w = 0 at
# the start) on each block's normalised input.
import math, sys, time, random
import torch, torch.nn as nn, torch.nn.functional as F

torch.manual_seed(0)
random.seed(0)
args = dict(a.split("=") for a in sys.argv[1:])
CTX = int(args.get("ctx", 64)); PAIRS = int(args.get("pairs", 4)); R = int(args.get("range", 512))
STEPS = int(args.get("steps", 3000)); LR = float(args.get("lr", 5e-4)); B = int(args.get("batch", 8))
D = int(args.get("d", 128)); H = int(args.get("heads", 4)); L = int(args.get("layers", 2))
FF = int(args.get("ff", 128)); WARM = int(args.get("warmup", 100)); CONV = int(args.get("conv", 0))
torch.set_num_threads(int(args.get("threads", 1)))
K0 = 1996; BOS, SEP = 101, 102
V = 3584


def example(rng):
    keys = rng.sample(range(R), PAIRS); vals = rng.sample(range(R), PAIRS)
    keys = [K0 + k for k in keys]; vals = [K0 + R + v for v in vals]
    free = CTX - 1
    ranks = sorted(rng.sample(range(free - PAIRS), PAIRS))
    ids = [BOS] + [K0 + 2 * R + rng.randrange(R) for _ in range(free)]
    for i, rk in enumerate(ranks):
        p = 1 + rk + i
        ids[p] = keys[i]; ids[p + 1] = vals[i]
    asked = list(range(PAIRS)); rng.shuffle(asked)
    ids.append(SEP)
    ids += [keys[i] for i in asked]
    ids.append(SEP)
    tg = [-100] * len(ids)
    for i in asked:
        tg.append(vals[i]); ids.append(keys[i])
        tg.append(-100); ids.append(vals[i])
    # inputs predict next: position t's target is the value after key. Our layout: target at key pos.
    return ids, tg


def batch(rng, n):
    xs, ys = zip(*[example(rng) for _ in range(n)])
    return torch.tensor(xs), torch.tensor(ys)


def rope(x):  # x: B,H,T,Dh
    T, Dh = x.shape[2], x.shape[3]
    inv = 1.0 / (10000 ** (torch.arange(0, Dh, 2).float() / Dh))
    ang = torch.arange(T).float()[:, None] * inv[None]
    c, s = ang.cos(), ang.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], -1)
    return out.flatten(-2)


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln1 = nn.LayerNorm(D); s.ln2 = nn.LayerNorm(D)
        s.wq = nn.Linear(D, D, bias=False); s.wk = nn.Linear(D, D, bias=False)
        s.wv = nn.Linear(D, D, bias=False); s.wo = nn.Linear(D, D, bias=False)
        s.w1 = nn.Linear(D, FF); s.w2 = nn.Linear(FF, D)
        if CONV:
            s.cw = nn.Parameter(torch.zeros(D, CONV))

    def conv(s, h):  # causal depthwise: out[t] = h[t] + sum_j cw[:, j] * h[t-j]
        T = h.shape[1]
        out = h
        for j in range(CONV):
            sh = F.pad(h, (0, 0, j, 0))[:, :T]
            out = out + sh * s.cw[:, j]
        return out

    def forward(s, x):
        Bz, T, _ = x.shape
        h = s.ln1(x)
        if CONV:
            h = s.conv(h)
        q, k, v = [w(h).view(Bz, T, H, D // H).transpose(1, 2) for w in (s.wq, s.wk, s.wv)]
        a = F.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True)
        x = x + s.wo(a.transpose(1, 2).reshape(Bz, T, D))
        return x + s.w2(F.gelu(s.w1(s.ln2(x))))


class Model(nn.Module):
    def __init__(s):
        super().__init__()
        s.wte = nn.Embedding(V, D); s.blocks = nn.ModuleList([Block() for _ in range(L)])
        s.lnf = nn.LayerNorm(D)
        for n, p in s.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02 / (math.sqrt(2 * L) if n.endswith(("wo.weight", "w2.weight")) else 1))
            elif "ln" not in n:
                nn.init.zeros_(p)

    def forward(s, x):
        h = s.wte(x)
        for b in s.blocks:
            h = b(h)
        return s.lnf(h) @ s.wte.weight.T


m = Model()
dec = [p for n, p in m.named_parameters() if p.dim() == 2]
nod = [p for n, p in m.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": dec, "weight_decay": 0.01}, {"params": nod, "weight_decay": 0}], lr=LR)
rng = random.Random(1); erng = random.Random(999)
ex, ey = batch(erng, 200)
t0 = time.time()
for step in range(STEPS):
    lr = LR * (step + 1) / WARM if step < WARM else LR * 0.5 * (1 + math.cos(math.pi * (step - WARM) / (STEPS - WARM)))
    for g in opt.param_groups:
        g["lr"] = lr
    x, y = batch(rng, B)
    loss = F.cross_entropy(m(x).flatten(0, 1), y.flatten(), ignore_index=-100)
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
    if (step + 1) % 250 == 0:
        with torch.no_grad():
            p = m(ex).argmax(-1); msk = ey != -100
            acc = (p[msk] == ey[msk]).float().mean().item()
        print(f"step {step+1} loss {loss.item():.3f} row_acc {acc:.3f} t {time.time()-t0:.0f}s", flush=True)
