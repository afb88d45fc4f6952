"""Synthetic tasks [R: paper notes §5; the paper's data (GLUE) ship in no package].

``sentiment``: sentences of Zipf-distributed filler words with 1–3 polarity words from a small
lexicon (strength ±1..±3, themselves Zipf-distributed, so rare polarity words are seen seldom and
squeezing rare-token embeddings costs accuracy); a negator ("not", "never", "hardly") flips the word
after it; a "but" clause decides the label on its own. Label = 1 if the deciding score > 0 (ties
are redrawn).

Words: with ``vocab`` (a BERT vocab.txt) the fillers are its whole-word entries outside the lexicon,
so the model is exactly a BERT with that vocabulary; without it a vocabulary of pronounceable
pseudo-words is made and padded to ``vocab_size`` entries (30,522 = bert-base-uncased), so the
embedding table has a real BERT's size and a long tail of tokens that never occur.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlkit.errors import InputError

__all__ = ["LEXICON", "NEGATORS", "SPECIALS", "make_vocab", "sentiment"]

LEXICON = {
    "good": 2, "great": 3, "excellent": 3, "wonderful": 3, "nice": 2, "fine": 1, "pleasant": 2, "superb": 3,
    "enjoyable": 2, "charming": 2, "brilliant": 3, "lovely": 2, "solid": 1, "decent": 1, "fun": 2, "moving": 2,
    "beautiful": 3, "clever": 2, "fresh": 1, "gripping": 2, "delightful": 3, "perfect": 3, "strong": 1,
    "warm": 1, "funny": 2, "smart": 2, "engaging": 2, "impressive": 2, "memorable": 2, "terrific": 3,
    "bad": -2, "terrible": -3, "awful": -3, "boring": -2, "dull": -2, "poor": -2, "weak": -1, "mediocre": -1,
    "horrible": -3, "annoying": -2, "bland": -1, "clumsy": -2, "tedious": -2, "messy": -1, "stupid": -2,
    "ugly": -2, "painful": -2, "disappointing": -2, "forgettable": -1, "lame": -2, "pointless": -2,
    "predictable": -1, "slow": -1, "silly": -1, "worst": -3, "dreadful": -3, "flat": -1, "shallow": -1,
    "waste": -2, "mess": -2,
}
NEGATORS = ("not", "never", "hardly")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_C = "bdfgklmnprstvz"
_V = "aeiou"


def _pseudo_words(n: int, rng: np.random.Generator, avoid: set[str]) -> list[str]:
    out, seen = [], set(avoid)
    while len(out) < n:
        k = int(rng.integers(2, 4))
        w = "".join(_C[rng.integers(len(_C))] + _V[rng.integers(len(_V))] for _ in range(k))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def make_vocab(vocab_size: int = 30522, fillers: int = 8000, seed: int = 0) -> tuple[list[str], list[str]]:
    """(vocab lines, filler words): specials, lexicon, negators, "but", fillers, then never-used
    pseudo-words up to ``vocab_size``."""
    fixed = SPECIALS + list(LEXICON) + list(NEGATORS) + ["but"]
    if vocab_size < len(fixed) + fillers:
        raise InputError("vocabulary too small for the fillers", expected=f">= {len(fixed) + fillers}",
                         got=str(vocab_size))
    rng = np.random.default_rng(seed)
    words = _pseudo_words(vocab_size - len(fixed), rng, set(fixed))
    return fixed + words, words[:fillers]


def _fillers_from(vocab: list[str]) -> list[str]:
    skip = set(LEXICON) | set(NEGATORS) | {"but"}
    return [w for w in vocab if w.isalpha() and w.islower() and len(w) > 1 and w not in skip]


def _zipf(n: int, s: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** s
    return p / p.sum()


def sentiment(n: int, *, seed: int = 0, vocab: list[str] | None = None, fillers: int = 8000,
              zipf: float = 1.1, neg_rate: float = 0.2, but_rate: float = 0.25) -> list[dict]:
    """``n`` examples {"text", "label"}."""
    if n < 1:
        raise InputError("n must be >= 1", got=str(n))
    rng = np.random.default_rng(seed)
    if vocab is None:
        _, words = make_vocab(fillers=fillers)
    else:
        missing = [w for w in list(LEXICON) + list(NEGATORS) + ["but"] if w not in set(vocab)]
        if missing:
            raise InputError("vocabulary lacks lexicon words", got=", ".join(missing[:5]))
        words = _fillers_from(vocab)[:fillers]
    pf = _zipf(len(words), zipf)
    lex = list(LEXICON)
    order = rng.permutation(len(lex))                                # which polarity words are frequent
    pl = _zipf(len(lex), 1.0)[np.argsort(order)]

    def clause(k: int) -> tuple[list[str], int]:
        toks = list(rng.choice(words, size=int(rng.integers(3, 9)), p=pf))
        score = 0
        for _ in range(k):
            w = lex[rng.choice(len(lex), p=pl)]
            val = LEXICON[w]
            piece = [w]
            if rng.random() < neg_rate:
                piece, val = [str(rng.choice(NEGATORS)), w], -val
            at = int(rng.integers(0, len(toks) + 1))
            toks[at:at] = piece
            score += val
        return toks, score

    out = []
    while len(out) < n:
        toks, score = clause(int(rng.integers(1, 4)))
        if rng.random() < but_rate:
            tail, score = clause(int(rng.integers(1, 3)))
            toks = toks + ["but"] + tail
        if score == 0:
            continue
        out.append({"text": " ".join(toks), "label": int(score > 0)})
    return out


def write_vocab(lines: list[str], dst: Path) -> None:
    from mlkit.codecs._io import write_bytes

    write_bytes(("\n".join(lines) + "\n").encode(), dst)
