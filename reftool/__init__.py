"""reftool: the reference tool of an open plain-file standard for ML pipelines and experiments.

The normative text is SPEC.md; this package implements it. Public API: the names in __all__.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
