"""The character-level language model's recipe: trained on text that ships with Python.

The corpus is the source code of a few pure-Python standard-library modules
(:data:`DEFAULT_MODULES`), read with :func:`inspect.getsource`: present and
identical on every installation of a given Python version, no download. The
last ``heldout_fraction`` of the text is held out; the model never trains on it.

The model (:class:`gradproof.nn.charlm.CharLM`) reads characters and predicts
the next one::

    idx (N, T) -> Embedding -> RNN / LSTM / GRU (or causal transformer blocks)
               -> Linear -> scores (N, T, V) -> temporal_softmax_loss

and is judged by its held-out loss in nats per character against a unigram
model (character frequencies of the training text, add-one smoothed) on the
same held-out text. ``gradproof train charlm`` (or ``python -m
gradproof.recipes.charlm``) runs it from the command line; docs/nn_sequence.md
has measured numbers and samples.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._validate import int_at_least, positive, positive_int
from ..errors import InputError
from ..nn import functional as F
from ..nn.charlm import CELLS, CharLM
from ..optim import Adam, CosineAnnealingLR, clip_grad_norm
from ..train import checkpoint as ckpt
from ..train.progress import ProgressBar
from ..train.rngs import set_generator_state
from .threads import add_threads_argument, blas_threads

__all__ = [
    "DEFAULT_MODULES",
    "stdlib_corpus",
    "CharVocab",
    "unigram_loss",
    "heldout_loss",
    "sample",
    "CharLMResult",
    "train_charlm",
    "add_arguments",
    "run",
    "main",
]

#: Standard-library modules whose source text is the corpus (prose-rich docstrings and code).
DEFAULT_MODULES = ("textwrap", "difflib", "argparse", "heapq", "fractions", "shlex")


def stdlib_corpus(modules: Sequence[str] = DEFAULT_MODULES) -> str:
    """The concatenated source text of ``modules`` (deterministic for a Python version)."""
    parts = []
    for name in modules:
        try:
            parts.append(inspect.getsource(importlib.import_module(name)))
        except (ImportError, OSError, TypeError) as exc:
            raise InputError(f"modules: cannot read the source of {name!r}: {exc}") from exc
    return "\n".join(parts)


class CharVocab:
    """The characters of a text, sorted; ``encode`` (str -> int64 ids) and ``decode``."""

    def __init__(self, text: str):
        if not text:
            raise InputError("text must not be empty")
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise InputError(f"text has characters outside the vocabulary: {unknown[:10]}")
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def unigram_loss(train_ids: np.ndarray, heldout_ids: np.ndarray, vocab_size: int) -> float:
    """Held-out cross-entropy (nats/char) of character frequencies counted on the training ids,
    add-one smoothed so that a character unseen in training has a finite cost."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[heldout_ids].mean())


def _windows(ids: np.ndarray, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ids[s : s + length] and targets ids[s + 1 : s + length + 1] for every start s."""
    offsets = starts[:, None] + np.arange(length)
    return ids[offsets], ids[offsets + 1]


def heldout_loss(model: CharLM, ids: np.ndarray, seq_len: int, batch_size: int = 64) -> float:
    """Mean next-character loss (nats/char) over every position of ``ids`` but the first.

    Windows of ``seq_len`` characters overlap by half, and each prediction is
    scored once, in the window where it has the most context (at least
    ``seq_len // 2`` characters, except at the very start of the text).
    """
    n = len(ids) - 1
    if n < 1:
        raise InputError(f"ids must hold at least 2 characters, got {len(ids)}")
    T = min(seq_len, n)
    stride = max(T // 2, 1)
    starts = list(range(0, n - T + 1, stride))
    if starts[-1] != n - T:
        starts.append(n - T)
    total, scored_up_to = 0.0, 0  # predictions of targets < scored_up_to are counted
    for b in range(0, len(starts), batch_size):
        chunk = np.array(starts[b : b + batch_size])
        x, y = _windows(ids, chunk, T)
        scores = model.forward(x).astype(np.float64)
        shifted = scores - scores.max(axis=2, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
        picked = np.take_along_axis(log_p, y[..., None], axis=2)[..., 0]
        for row, s in enumerate(chunk):
            first = max(scored_up_to - s, 0)  # skip positions an earlier window scored
            total -= picked[row, first:].sum()
            scored_up_to = s + T
    return total / n


def sample(
    model: CharLM, vocab: CharVocab, prompt: str, num_chars: int, seq_len: int,
    temperature: float = 0.8, rng=None,
) -> str:  # fmt: skip
    """``prompt`` continued by ``num_chars`` characters drawn from the model (last ``seq_len``
    characters as context), scores divided by ``temperature`` before the softmax."""
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature!r}")
    gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    ids = list(vocab.encode(prompt or vocab.chars[0]))
    for _ in range(num_chars):
        context = np.array(ids[-seq_len:])[None]
        logits = model.forward(context)[0, -1].astype(np.float64) / temperature
        p = np.exp(logits - logits.max())
        ids.append(int(gen.choice(len(p), p=p / p.sum())))
    return vocab.decode(ids)


@dataclass
class CharLMResult:
    model: CharLM
    vocab: CharVocab
    heldout_loss: float  # nats/char
    unigram_loss: float  # nats/char, same held-out text
    train_losses: list[float] = field(default_factory=list)  # per logged step
    samples: str = ""
    seconds: float = 0.0
    steps: int = 0


def train_charlm(
    cell: str = "gru",
    hidden_size: int = 256,
    embed_dim: int = 64,
    num_layers: int = 1,
    num_heads: int = 4,
    seq_len: int = 64,
    batch_size: int = 32,
    steps: int = 600,
    lr: float = 5e-3,
    clip_norm: float = 1.0,
    heldout_fraction: float = 0.1,
    modules: Sequence[str] = DEFAULT_MODULES,
    seed: int = 0,
    dtype=np.float32,
    time_limit: float | None = None,
    sample_chars: int = 300,
    log_every: int = 100,
    verbose: bool = True,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    allow_fresh: bool = False,
    progress: bool = True,
) -> CharLMResult:
    """Train a :class:`CharLM` on the standard-library corpus; report held-out loss and a sample.

    Each step takes ``batch_size`` random windows of ``seq_len`` characters of
    the training text (seeded), minimises the mean next-character loss with
    Adam (cosine schedule over ``steps``, gradient norm clipped to
    ``clip_norm``), and stops after ``steps`` or ``time_limit`` seconds.

    With ``verbose``, a line says what trains, then the loss after step 1 and
    every ``log_every`` steps (the time so far and per step beside it); with
    ``progress`` too, a bar on stderr is redrawn every step when stderr is a
    terminal.

    With ``checkpoint_dir`` the run is checkpointed every ``checkpoint_every``
    steps and at the end (model, Adam, schedule, the sampling Generator, the
    losses: ``step-N`` is stored as ``epoch-N.json``/``.npz``, see
    :mod:`gradproof.train.checkpoint`). ``resume`` continues bit for bit from
    the newest one that loads (damaged ones are moved aside with a warning);
    no usable checkpoint is an error unless ``allow_fresh``.
    """
    checkpoint_every = positive_int("checkpoint_every", checkpoint_every)
    steps, seq_len = positive_int("steps", steps), positive_int("seq_len", seq_len)
    batch_size = positive_int("batch_size", batch_size)
    log_every = positive_int("log_every", log_every)
    seed, lr = int_at_least("seed", seed, 0), positive("lr", lr)
    if resume and checkpoint_dir is None:
        raise InputError("resume=True needs checkpoint_dir")
    if not 0 < heldout_fraction < 1:
        raise InputError(f"heldout_fraction must be in (0, 1), got {heldout_fraction!r}")
    text = stdlib_corpus(modules)
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    cut = int(len(ids) * (1 - heldout_fraction))
    train_ids, test_ids = ids[:cut], ids[cut:]
    if len(train_ids) <= seq_len + 1:
        raise InputError(f"seq_len={seq_len} is longer than the training text")
    rng = np.random.default_rng(seed)
    model = CharLM(len(vocab), cell, hidden_size, embed_dim, num_layers, num_heads,
                   rng=rng, dtype=dtype)  # fmt: skip
    optimizer = Adam(model.parameters(), lr=lr)
    schedule = CosineAnnealingLR(optimizer, T_max=steps)
    start, losses, step = time.perf_counter(), [], 0
    config = {"cell": cell, "hidden_size": hidden_size, "embed_dim": embed_dim,
              "num_layers": num_layers, "num_heads": num_heads, "seq_len": seq_len,
              "batch_size": batch_size, "steps": steps, "lr": lr, "clip_norm": clip_norm,
              "heldout_fraction": heldout_fraction, "modules": list(modules), "seed": seed,
              "dtype": str(np.dtype(dtype))}

    def state() -> dict:
        return {"config": config, "step": step, "losses": list(losses),
                "seconds": time.perf_counter() - start, "rng": rng.bit_generator.state,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict()}

    if resume:
        found = ckpt.find_resumable(checkpoint_dir)
        if found.path is None and not allow_fresh:
            raise ckpt.CheckpointError(
                f"resume=True, but {found.describe().splitlines()[-1]}; pass allow_fresh=True "
                "(gradproof train charlm: --allow-fresh) to start from step 0")
        if found.path is not None:
            step, losses, start = _restore_charlm(found, config, rng, model, optimizer, schedule)
            if verbose:
                print(f"resumed from step {step} ({found.path})", flush=True)
    if verbose:
        print(f"charlm: {cell}, {num_layers} layer(s) of {hidden_size}, vocabulary {len(vocab)}, "
              f"{len(train_ids):,} training characters; {steps} steps of {batch_size} windows "
              f"of {seq_len}", flush=True)
    bar = ProgressBar(steps, "charlm", enabled=verbose and progress)
    first_step = step
    while step < steps:
        x, y = _windows(train_ids, rng.integers(0, cut - seq_len - 1, size=batch_size), seq_len)
        model.zero_grad()
        loss, dscores = F.temporal_softmax_loss(model.forward(x), y)
        model.backward(dscores / seq_len)  # the mean over time steps, like the reported loss
        clip_grad_norm(model.parameters(), clip_norm)
        optimizer.step()
        schedule.step()
        step += 1
        logged = step % log_every == 0 or step == steps
        if logged:
            losses.append(loss / seq_len)
        bar.update(step, loss / seq_len)
        if verbose and (logged or step == first_step + 1):  # the first step says it runs
            bar.close()
            elapsed = time.perf_counter() - start
            print(f"step {step:>5}/{steps}  train loss {loss / seq_len:.3f} nats/char  "
                  f"{elapsed:.0f}s ({1e3 * elapsed / step:.0f} ms/step)", flush=True)
        stop = time_limit is not None and time.perf_counter() - start > time_limit
        if checkpoint_dir is not None and (step % checkpoint_every == 0 or step == steps or stop):
            ckpt.save_checkpoint(checkpoint_dir, step, state())
        if stop:
            break
    bar.close()
    seconds = time.perf_counter() - start
    result = CharLMResult(
        model, vocab, heldout_loss(model, test_ids, seq_len),
        unigram_loss(train_ids, test_ids, len(vocab)), losses, seconds=seconds, steps=step,
    )  # fmt: skip
    if sample_chars:
        prompt = vocab.decode(test_ids[:seq_len // 2])
        result.samples = sample(model, vocab, prompt, sample_chars, seq_len, rng=seed)
    return result


def _restore_charlm(found, config: dict, rng, model, optimizer, schedule):
    """Put a checkpoint's state back, all or nothing; ``(step, losses, start time)``."""
    saved = found.state
    if not isinstance(saved, dict) or saved.get("config") != config:
        got = saved.get("config") if isinstance(saved, dict) else saved
        differ = {k: (got.get(k), v) for k, v in config.items()
                  if not isinstance(got, dict) or got.get(k) != v}
        raise ckpt.CheckpointError(
            f"checkpoint {found.path!r} was made by a differently configured run: "
            + ", ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in differ.items()))
    step, seconds = saved.get("step"), saved.get("seconds")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= config["steps"] \
            or not isinstance(seconds, (int, float)) or not isinstance(saved.get("losses"), list):
        raise ckpt.CheckpointError(f"checkpoint {found.path!r}: step, seconds or losses malformed")
    before = (model.state_dict(), optimizer.state_dict(), schedule.state_dict(),
              rng.bit_generator.state)
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        set_generator_state(rng, saved["rng"])
    except Exception as exc:  # all or nothing: put back what was there
        model.load_state_dict(before[0])
        optimizer.load_state_dict(before[1])
        schedule.load_state_dict(before[2])
        rng.bit_generator.state = before[3]
        raise ckpt.CheckpointError(f"checkpoint {found.path!r} does not fit this run "
                              f"({type(exc).__name__}: {exc})") from exc
    return step, [float(v) for v in saved["losses"]], time.perf_counter() - seconds


# --- command line ----------------------------------------------------------------------------
#: command-line option -> train_charlm argument (options left out keep the function's defaults)
_OPTIONS = {
    "cell": "cell", "hidden": "hidden_size", "embed": "embed_dim", "layers": "num_layers",
    "heads": "num_heads", "seq_len": "seq_len", "batch_size": "batch_size", "steps": "steps",
    "lr": "lr", "time_limit": "time_limit", "seed": "seed", "dtype": "dtype",
    "sample_chars": "sample_chars", "checkpoint_dir": "checkpoint_dir",
    "checkpoint_every": "checkpoint_every", "log_every": "log_every",
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``gradproof train charlm`` (and ``python -m gradproof.recipes.charlm``);
    defaults are :func:`train_charlm`'s."""
    parser.add_argument("--cell", choices=CELLS, default=None, help="default gru")
    parser.add_argument("--hidden", type=int, default=None, help="hidden units (default 256)")
    parser.add_argument("--embed", type=int, default=None, help="embedding width (default 64)")
    parser.add_argument("--layers", type=int, default=None, help="default 1")
    parser.add_argument("--heads", type=int, default=None, help="transformer heads (default 4)")
    parser.add_argument("--seq-len", type=int, default=None, help="default 64")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32")
    parser.add_argument("--steps", type=int, default=None, help="default 600")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (5e-3)")
    parser.add_argument("--time-limit", type=float, default=None, help="stop after SECONDS")
    parser.add_argument("--seed", type=int, default=None, help="default 0")
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None)
    parser.add_argument("--sample-chars", type=int, default=None, help="default 300")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="save a checkpoint every --checkpoint-every steps and at the end")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                        help="default 100")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --checkpoint-dir (an "
                             "error when there is none, unless --allow-fresh)")
    parser.add_argument("--allow-fresh", action="store_true",
                        help="with --resume: start from step 0 when there is no checkpoint")
    parser.add_argument("--log-every", type=int, default=None, metavar="STEPS",
                        help="print the loss after step 1 and every STEPS steps (default 100)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (drawn on stderr only when it is a terminal)")
    add_threads_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Train from parsed arguments, print the losses and a sample; exit status 0."""
    options = {kw: getattr(args, opt) for opt, kw in _OPTIONS.items()
               if getattr(args, opt, None) is not None}  # fmt: skip
    if "dtype" in options:
        options["dtype"] = np.dtype(options["dtype"])
    if args.resume and args.checkpoint_dir is None:
        raise SystemExit("gradproof train charlm: --resume needs --checkpoint-dir")
    with blas_threads(args.threads):
        result = train_charlm(**options, resume=args.resume, allow_fresh=args.allow_fresh,
                              progress=not args.no_progress)
    bits = 1 / math.log(2)
    print(f"held-out loss: {result.heldout_loss:.3f} nats/char ({result.heldout_loss * bits:.2f} "
          f"bits/char); unigram: {result.unigram_loss:.3f} nats/char "
          f"({result.unigram_loss * bits:.2f} bits/char); {result.steps} steps, "
          f"{result.seconds:.0f}s")  # fmt: skip
    if result.samples:
        print("--- sample (prompt: the first held-out characters) ---")
        print(result.samples)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gradproof.recipes.charlm",
        description="Train a character-level language model on Python's own source text.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
