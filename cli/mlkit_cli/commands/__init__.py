"""One module per method (a Typer named ``app``), plus ``core`` for the codec verbs."""
