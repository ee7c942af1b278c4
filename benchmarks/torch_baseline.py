"""The reference notebook's training loop in PyTorch, the baseline toysuper is measured against.

Written as the notebook writes it: every model ("instance") of the sweep in one tensor, the
batch drawn with two uniform draws per entry (one decides activity, one gives the magnitude),
the tied ReLU model x' = ReLU(W^T W x + b), importance-weighted squared error, AdamW.
"""

from __future__ import annotations

import time

import torch


def model_steps_per_second(models: int, n: int, m: int, batch: int, steps: int,
                           threads: int | None = None, device: str = "cpu") -> float:
    """Train `models` instances for `steps` steps after one warm-up step; model-steps per second.

    `device`: a torch device ("cuda" for the GPU peer of benchmarks/gpu_check.py).
    """
    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator(device=device).manual_seed(0)
    W = torch.nn.init.xavier_normal_(torch.empty(models, m, n, device=device))
    W.requires_grad_(True)
    b = torch.zeros(models, n, device=device, requires_grad=True)
    density = torch.logspace(0, -2, models, device=device)[:, None].expand(models, n)  # 1 .. 0.01
    importance = 0.9 ** torch.arange(n, dtype=torch.float32, device=device)
    opt = torch.optim.AdamW([W, b], lr=1e-3, weight_decay=0.01)

    def step():
        on = torch.rand(models, batch, n, generator=g, device=device) <= density[:, None, :]
        x = torch.where(on, torch.rand(models, batch, n, generator=g, device=device), 0.0)
        h = torch.einsum("ibn,imn->ibm", x, W)
        out = torch.relu(torch.einsum("ibm,imn->ibn", h, W) + b[:, None, :])
        loss = (importance * (x - out) ** 2).mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # a GPU runs asynchronously: wait for its queue before reading the clock
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return models * steps / (time.perf_counter() - t0)


if __name__ == "__main__":
    import sys
    M, n, m, steps = map(int, sys.argv[1:5])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: "
          f"{model_steps_per_second(M, n, m, 1024, steps):.0f} model-steps/s")
