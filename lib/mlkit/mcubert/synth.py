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

``pairs`` (MRPC-like; uses segment B): A = Zipf fillers plus 1–3 content words (whole words from the
part of the vocabulary after the fillers); B = A with fillers dropped and neighbours swapped;
label 0 when exactly one content word of B was replaced by another. B alone, and the lengths, have
the same distribution under both labels: only comparing A with B tells them apart.

``retrieval`` (long range, up to ``max_len`` WordPiece tokens with [CLS]/[SEP]): "k1 v1 k2 v2 ...
kq"; keys are distinct within a row, values come from ``n_classes`` disjoint word groups (each class
holds the same number of pairs in a row, so counting values says nothing), and the query key kq
names a pair at a uniformly random position; label = that value's class. Every key and value is a
whole ASCII vocabulary word, hence exactly one WordPiece token, so a row is 2·pairs + 3 tokens.

``embtable`` (paper notes §5.4): an embedding table with planted clusters of known ranks, Zipf
token frequencies and noise, for the NAS (``nas.py``) to recover.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from mlkit.errors import InputError

__all__ = ["LEXICON", "NEGATORS", "SPECIALS", "make_vocab", "pairs", "retrieval", "sentiment", "write_vocab", "embtable"]

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


@lru_cache(maxsize=1)
def _generated_words() -> tuple[str, ...]:
    return tuple(_fillers_from(make_vocab()[0]))


def _words(vocab: list[str] | None) -> list[str]:
    """Whole ASCII words outside the sentiment lexicon: the generated ones when ``vocab`` is None
    (fillers first, as ``sentiment`` uses them)."""
    return [w for w in (_generated_words() if vocab is None else _fillers_from(vocab)) if w.isascii()]


def pairs(n: int, *, seed: int = 0, vocab: list[str] | None = None, fillers: int = 8000, content: int = 1000,
          zipf: float = 1.1, min_fillers: int = 6, max_fillers: int = 14, drop: float = 0.25,
          swaps: int = 2) -> list[dict]:
    """``n`` examples {"text", "text_b", "label"} (the names ``data.read_examples`` reads as pairs),
    labels exactly balanced (label 1 = paraphrase).

    Fillers are the first ``fillers`` words (Zipf ``zipf``), content words the next ``content``
    (uniform). Each filler of A is dropped from B with probability ``drop`` and 0..``swaps``
    adjacent tokens are swapped (a B still equal to A gets one swap of unequal neighbours); a negative
    then has one content word replaced by a content word absent from A."""
    if n < 1:
        raise InputError("n must be >= 1", got=str(n))
    if not 1 <= min_fillers <= max_fillers or not 0 <= drop < 1 or swaps < 0 or fillers < 1 or content < 4:
        raise InputError("bad pairs parameters", expected="1 <= min_fillers <= max_fillers, 0 <= drop < 1, "
                         "swaps >= 0, fillers >= 1, content >= 4",
                         got=f"{min_fillers}, {max_fillers}, {drop}, {swaps}, {fillers}, {content}")
    words = _words(vocab)
    if len(words) < fillers + content:
        raise InputError("vocabulary lacks whole words for fillers and content words",
                         expected=f">= {fillers + content}", got=str(len(words)),
                         hint="lower fillers= or content=")
    fw, cw = words[:fillers], words[fillers:fillers + content]
    cdf = np.cumsum(_zipf(len(fw), zipf))
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    out = []
    for label in labels:
        drawn = np.searchsorted(cdf, rng.random(int(rng.integers(min_fillers, max_fillers + 1))), side="right")
        toks = [(fw[min(i, len(fw) - 1)], False) for i in drawn]     # (word, is content)
        picked = rng.choice(len(cw), size=int(rng.integers(1, 4)), replace=False)
        for i in picked:
            toks.insert(int(rng.integers(0, len(toks) + 1)), (cw[i], True))
        b = [t for t in toks if t[1] or rng.random() >= drop]
        for _ in range(int(rng.integers(0, swaps + 1)) if len(b) > 1 else 0):
            i = int(rng.integers(len(b) - 1))
            b[i], b[i + 1] = b[i + 1], b[i]
        if b == toks:                                                # unedited: swap two unequal neighbours
            diff = [i for i in range(len(b) - 1) if b[i][0] != b[i + 1][0]]
            i = diff[int(rng.integers(len(diff)))]
            b[i], b[i + 1] = b[i + 1], b[i]
        if not label:                                                # the same edits, then one swapped word
            at = [i for i, t in enumerate(b) if t[1]]
            j = at[int(rng.integers(len(at)))]
            new = int(rng.integers(len(cw) - len(picked)))           # uniform over content words not in A
            for i in sorted(picked):
                new += new >= i
            b[j] = (cw[new], True)
        out.append({"text": " ".join(w for w, _ in toks), "text_b": " ".join(w for w, _ in b),
                    "label": int(label)})
    return out


def retrieval(n: int, *, seed: int = 0, vocab: list[str] | None = None, max_len: int = 512,
              min_len: int | None = None, n_classes: int = 4, keys: int = 2000, values: int = 32) -> list[dict]:
    """``n`` examples {"text", "label"}, labels balanced over ``n_classes``.

    Token length (with [CLS] and [SEP]) = 2·pairs + 3, pairs a multiple of ``n_classes``: each row
    draws a target uniformly in [``min_len``, ``max_len``] (``min_len`` defaults to max_len // 2)
    and takes the most pairs that fit. Keys are the first ``keys`` whole words, the ``values``
    words of each class the ones after them."""
    if n < 1:
        raise InputError("n must be >= 1", got=str(n))
    if n_classes < 2 or values < 1:
        raise InputError("bad retrieval parameters", expected="n_classes >= 2, values >= 1",
                         got=f"n_classes={n_classes}, values={values}")
    least = 2 * n_classes + 3                                        # one pair per class + query + [CLS] [SEP]
    if max_len < least:
        raise InputError("max_len too small for one pair of each class and the query", expected=f">= {least}",
                         got=str(max_len))
    min_len = max(least, max_len // 2) if min_len is None else min_len
    if not least <= min_len <= max_len:
        raise InputError("min_len out of range", expected=f"{least} <= min_len <= max_len ({max_len})",
                         got=str(min_len))
    most = n_classes * ((max_len - 3) // (2 * n_classes))             # pairs in the longest row
    if keys < most:
        raise InputError("too few keys for the longest row (keys are distinct within a row)",
                         expected=f">= {most}", got=str(keys))
    words = _words(vocab)
    if len(words) < keys + n_classes * values:
        raise InputError("vocabulary lacks whole words for keys and values",
                         expected=f">= {keys + n_classes * values}", got=str(len(words)),
                         hint="lower keys= or values=")
    kw = words[:keys]
    vw = [words[keys + c * values:keys + (c + 1) * values] for c in range(n_classes)]
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % n_classes)
    out = []
    for label in labels:
        target = int(rng.integers(min_len, max_len + 1))
        m = n_classes * max(1, (target - 3) // (2 * n_classes))
        cls = rng.permutation(np.arange(m) % n_classes)              # every class r = m / n_classes times
        ks = rng.choice(keys, size=m, replace=False)
        q = int(rng.choice(np.flatnonzero(cls == label)))
        toks = []
        for k, c in zip(ks, cls, strict=True):
            toks += [kw[k], vw[c][int(rng.integers(values))]]
        out.append({"text": " ".join([*toks, kw[ks[q]]]), "label": int(label)})
    return out


def embtable(V: int = 4000, D: int = 128, ranks=(2, 4, 6, 8, 10, 12, 14, 16), *, noise: float = 0.02,
             zipf: float = 1.0, decay: float = 0.5, seed: int = 0) -> dict:
    """A (V, D) table with planted clusters: cluster c's rows lie in a random rank-r_c subspace
    (orthonormal basis, coefficient spectrum falling linearly from 1 to ``decay``) plus isotropic
    noise of std ``noise`` per entry. Cluster sizes are drawn (Dirichlet, each ≥ V / (4C)); token
    frequencies are Zipf over a random token order. Returns {"table", "labels", "ranks", "freq"}."""
    ranks = np.asarray(ranks, np.int64)
    C = len(ranks)
    if C < 1 or (ranks < 1).any() or ranks.max() > D:
        raise InputError("planted ranks must be 1..D", got=str(ranks.tolist()))
    if V < 4 * C:
        raise InputError("too few tokens for the clusters", expected=f"V >= {4 * C}", got=str(V))
    rng = np.random.default_rng(seed)
    floor = V // (4 * C)
    sizes = floor + rng.multinomial(V - floor * C, rng.dirichlet(np.full(C, 2.0)))
    labels = rng.permutation(np.repeat(np.arange(C), sizes))
    E = np.zeros((V, D))
    for c, r in enumerate(ranks):
        idx = np.flatnonzero(labels == c)
        B = np.linalg.qr(rng.standard_normal((D, r)))[0]
        spec = np.linspace(1.0, decay, r)
        E[idx] = (rng.standard_normal((len(idx), r)) * spec) @ B.T
    E += noise * rng.standard_normal((V, D))
    freq = np.empty(V)
    freq[rng.permutation(V)] = 1.0 / np.arange(1, V + 1) ** zipf
    return {"table": E, "labels": labels, "ranks": ranks, "freq": freq * (V / freq.sum())}
