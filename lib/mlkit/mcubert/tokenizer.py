"""WordPiece tokenisation from a local ``vocab.txt`` (the ``tokenizers`` package's BERT WordPiece,
lower-casing as the uncased checkpoints expect). Nothing is downloaded.

``encode`` returns what ``BertModel`` takes: ids, token types (0 for segment A, 1 for B) and an
attention mask, padded to the longest sequence (at most ``max_len``; pairs are truncated longest
first, as BERT's ``run_classifier.py`` does)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlkit.errors import InputError, MissingInputError

__all__ = ["WordPiece"]


class WordPiece:
    def __init__(self, vocab: str | Path, *, lowercase: bool = True):
        from tokenizers import BertWordPieceTokenizer

        path = Path(vocab)
        if not path.is_file():
            raise MissingInputError(f"{path}: no such vocab.txt")
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for tok in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
            if tok not in lines:
                raise InputError(f"{path.name}: not a BERT vocabulary", expected=f"a line {tok}",
                                 got=f"{len(lines)} lines")
        self.vocab = lines
        self._tok = BertWordPieceTokenizer(str(path), lowercase=lowercase)
        self._tok.no_padding()
        self._tok.no_truncation()
        self.pad_id = lines.index("[PAD]")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, texts: list[str], pairs: list[str] | None = None, *, max_len: int = 128):
        """(ids, types, mask), each int64 (N, L) with L = min(max_len, longest)."""
        if max_len < 3 if pairs else max_len < 2:
            raise InputError("max_len too small", expected=">= 3 for pairs, >= 2 otherwise", got=str(max_len))
        rows = []
        for i, text in enumerate(texts):
            a = self._tok.encode(text, add_special_tokens=False).ids
            b = self._tok.encode(pairs[i], add_special_tokens=False).ids if pairs is not None else None
            budget = max_len - (3 if b is not None else 2)
            if b is None:
                a = a[:budget]
            else:
                while len(a) + len(b) > budget:            # truncate the longer one, one token at a time
                    if len(a) >= len(b):
                        a = a[:-1]
                    else:
                        b = b[:-1]
            cls, sep = self.vocab.index("[CLS]"), self.vocab.index("[SEP]")
            ids = [cls, *a, sep] + ([*b, sep] if b is not None else [])
            types = [0] * (len(a) + 2) + ([1] * (len(b) + 1) if b is not None else [])
            rows.append((ids, types))
        L = max((len(r[0]) for r in rows), default=2)
        ids = np.full((len(rows), L), self.pad_id, np.int64)
        types = np.zeros((len(rows), L), np.int64)
        mask = np.zeros((len(rows), L), np.int64)
        for i, (r, t) in enumerate(rows):
            ids[i, :len(r)], types[i, :len(t)], mask[i, :len(r)] = r, t, 1
        return ids, types, mask
