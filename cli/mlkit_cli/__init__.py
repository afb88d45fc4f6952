"""The thin typer front of mlkit. Heavy libraries (torch, cv2, scipy, faiss) and the method
packages are imported inside command bodies only, so ``mlkit --help`` and TAB completion stay
fast."""
