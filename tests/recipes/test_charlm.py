"""The character-level language model's recipe: corpus, vocabulary, baseline, held-out loss,
a short training run and its samples."""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.errors import InputError
from gradproof.recipes.charlm import (
    CharVocab,
    heldout_loss,
    sample,
    stdlib_corpus,
    train_charlm,
    unigram_loss,
)


def test_corpus_is_the_standard_library_source_and_vocab_round_trips():
    text = stdlib_corpus(("textwrap",))
    import textwrap

    assert text.startswith(open(textwrap.__file__, encoding="utf-8").read()[:200])
    vocab = CharVocab(text)
    assert vocab.decode(vocab.encode(text[:500])) == text[:500]
    with pytest.raises(InputError, match="outside the vocabulary"):
        CharVocab("abc").encode("abd")


def test_unigram_loss_by_hand():
    # train counts of a, b: 3, 1 -> add-one: 4/6, 2/6; held-out "ab"
    loss = unigram_loss(np.array([0, 0, 0, 1]), np.array([0, 1]), 2)
    assert loss == pytest.approx(-(np.log(4 / 6) + np.log(2 / 6)) / 2, rel=1e-14)


class BigramModel:
    """A stand-in whose scores depend on the current character only: any correct windowing
    of the held-out text must then give exactly the bigram loss of every prediction."""

    def __init__(self, table):
        self.table = table

    def forward(self, idx):
        return self.table[idx]


@pytest.mark.parametrize("length, seq_len", [(23, 6), (7, 6), (6, 10), (40, 1)])
def test_heldout_loss_scores_every_prediction_exactly_once(length, seq_len):
    rng = np.random.default_rng(11)
    table = rng.standard_normal((5, 5))
    ids = rng.integers(0, 5, length)
    log_p = table - np.log(np.exp(table).sum(axis=1, keepdims=True))
    expected = -np.mean(log_p[ids[:-1], ids[1:]])
    assert heldout_loss(BigramModel(table), ids, seq_len, batch_size=2) == pytest.approx(
        expected, rel=1e-13
    )


def test_a_short_charlm_run_beats_the_unigram_model_and_samples_text():
    result = train_charlm(cell="gru", hidden_size=32, embed_dim=16, seq_len=32, batch_size=16,
                          steps=150, lr=1e-2, modules=("textwrap",), sample_chars=40,
                          verbose=False)  # fmt: skip
    assert result.heldout_loss < result.unigram_loss - 0.3
    assert len(result.samples) == 16 + 40 and result.steps == 150
    again = sample(result.model, result.vocab, "def ", 20, 32, rng=1)
    assert again == sample(result.model, result.vocab, "def ", 20, 32, rng=1)
