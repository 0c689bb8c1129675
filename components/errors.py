"""The library's own error type: a verdict, not a crash.

Data checks, the registry and the stages raise it when they ran correctly and the answer is
'no' (bad data, a failed gate, a registry that refuses). Stage ``main()``s turn it into exit
code 1 with its message; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class StageFailed(RuntimeError):
    """A step ran correctly and its verdict is 'no' (bad data, failed gate)."""
