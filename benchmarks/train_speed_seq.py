"""Sequence-model training speed: conv1d, LSTM and GRU against PyTorch, one process per library.

Three comparisons, each library in its own worker process with the same
thread count, rounds of steps alternating (``benchmarks/_interleave.py``),
float32, plain SGD lr 0.01, the same synthetic batches on both sides:

* ``conv1d``: :class:`~gradproof.nn.cnn.CNN1d` with its MNIST-1D defaults
  (signals of length 40; conv(1->32, 5) - ReLU - [conv(32->64, 3) - pool 2 -
  ReLU] x 2 - affine(64*10 -> 10)), batch 64, softmax cross-entropy, from the
  same initial weights as the torch twin.
* ``lstm`` and ``gru``: one recurrent layer over (N=64, T=40, D=32) to H=128
  hidden units, forward and backward of every hidden state against a fixed
  random upstream gradient (``loss = sum(h * dh)``), then the SGD step; the
  gradients of the weights, the biases and the input ``x`` on both sides
  (``torch.nn.LSTM``/``torch.nn.GRU`` with ``batch_first=True``).

Prints, per comparison, samples (sequences) per second per library (median
over rounds), the ratio (median of the per-round ratios) and the load average.

    python benchmarks/train_speed_seq.py                      # about 2-3 minutes
    python benchmarks/train_speed_seq.py --only lstm gru --threads 1
"""

from __future__ import annotations

import argparse

import numpy as np
from _interleave import (
    add_arguments,
    as_tensors,
    compare,
    default_threads,
    print_report,
    sgd_classifier,
)

N, T, D, H = 64, 40, 32, 128
LENGTH = 40  # MNIST-1D signals
KINDS = ("conv1d", "lstm", "gru")


# --- conv1d: CNN1d on MNIST-1D shapes --------------------------------------------------------
def signal_batches(n_batches: int, batch: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((batch, 1, LENGTH), dtype=np.float32),
         rng.integers(0, 10, size=batch))
        for _ in range(n_batches)
    ]


def cnn1d_model(seed: int):
    from gradproof.nn.cnn import CNN1d

    return CNN1d(LENGTH, 1, 10, dtype=np.float32, rng=seed)


def torch_cnn1d(model):
    """``model``'s layers one for one in torch, with its weights."""
    import torch

    from gradproof.nn.activation import ReLU
    from gradproof.nn.containers import Flatten
    from gradproof.nn.conv import Conv1d, MaxPool1d
    from gradproof.nn.linear import Linear

    layers = []
    for m in model.layers:
        if isinstance(m, Conv1d):
            t = torch.nn.Conv1d(m.in_channels, m.out_channels, m.weight.shape[2],
                                stride=m.stride, padding=m.padding)
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(m.weight.data))
                t.bias.copy_(torch.from_numpy(m.bias.data))
        elif isinstance(m, MaxPool1d):
            t = torch.nn.MaxPool1d(m.kernel_size[1], m.stride)
        elif isinstance(m, ReLU):
            t = torch.nn.ReLU()
        elif isinstance(m, Flatten):
            t = torch.nn.Flatten()
        elif isinstance(m, Linear):
            t = torch.nn.Linear(m.in_features, m.out_features)
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(m.weight.data.T.copy()))
                t.bias.copy_(torch.from_numpy(m.bias.data))
        else:
            raise TypeError(f"no torch twin for {m!r}")
        layers.append(t)
    return torch.nn.Sequential(*layers)


# --- LSTM and GRU ---------------------------------------------------------------------------
def sequence_batches(n_batches: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(x (N, T, D), dh (N, T, H)) pairs, float32."""
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((N, T, D), dtype=np.float32),
         rng.standard_normal((N, T, H), dtype=np.float32) / np.float32(N * T))
        for _ in range(n_batches)
    ]


def gradproof_recurrent_step(kind: str, lr: float, seed: int):
    from gradproof.nn.sequence import GRU, LSTM
    from gradproof.optim import SGD

    layer = {"lstm": LSTM, "gru": GRU}[kind](D, H, rng=seed, dtype=np.float32)
    opt = SGD(layer.parameters(), lr=lr)

    def step(x, dh):
        opt.zero_grad()
        h = layer.forward(x)
        layer.backward(dh)  # dx and dh0 as well
        opt.step()
        return float(np.vdot(h, dh))

    return step


def torch_recurrent_step(kind: str, lr: float, seed: int):
    import torch

    torch.manual_seed(seed)
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](D, H, batch_first=True)
    opt = torch.optim.SGD(layer.parameters(), lr=lr)

    def step(x, dh):
        opt.zero_grad()
        x.grad = None
        h, _ = layer(x)
        h.backward(dh)
        opt.step()
        return float(torch.dot(h.detach().reshape(-1), dh.reshape(-1)))

    return step


def build(library: str, options: dict):
    """``(step, batches)`` for one worker (see ``_interleave.compare``)."""
    kind, lr, seed = options["kind"], options["lr"], options["seed"]
    if kind == "conv1d":
        return sgd_classifier(library, cnn1d_model(seed), torch_cnn1d,
                              signal_batches(8, N, seed), lr)
    batches = sequence_batches(4, seed)
    if library == "gradproof":
        return gradproof_recurrent_step(kind, lr, seed), batches
    tensors = as_tensors(batches)
    for x, _ in tensors:
        x.requires_grad_(True)  # gradproof computes dx too
    return torch_recurrent_step(kind, lr, seed), tensors


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=11, steps=20, warmup=5, max_seconds=45.0)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--only", nargs="+", choices=KINDS, default=list(KINDS))
    args = parser.parse_args(argv)

    threads = args.threads or default_threads()
    results = {}
    titles = {
        "conv1d": "conv1d: CNN1d (32, 64, 64) on 1x40 signals, batch 64, float32, SGD",
        "lstm": f"LSTM: (N={N}, T={T}, D={D}) -> H={H}, float32, forward + backward + SGD",
        "gru": f"GRU: (N={N}, T={T}, D={D}) -> H={H}, float32, forward + backward + SGD",
    }
    for kind in args.only:
        options = {"kind": kind, "lr": args.lr, "seed": args.seed}
        run = compare(build, options, name=kind, rounds=args.rounds, steps=args.steps,
                      warmup=args.warmup, batch=N, threads=threads,
                      max_seconds=args.max_seconds)
        print(f"{titles[kind]}; {run.rounds} rounds of {args.steps} steps per library")
        print_report(run)
        print()
        results[kind] = run.summary()
    print("summary: " + ", ".join(f"{k} {v['ratio']:.2f}x" for k, v in results.items())
          + f" PyTorch ({threads} thread(s))")
    return results


if __name__ == "__main__":
    main()
