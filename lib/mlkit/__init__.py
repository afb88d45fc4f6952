"""mlkit: ten recent ML research papers as composable command-line tools.

The library never prints and never exits: it returns values and raises
:class:`mlkit.errors.MlkitError` subclasses. The command-line front lives in the
separate ``mlkit_cli`` package.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
