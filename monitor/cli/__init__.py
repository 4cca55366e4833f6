"""The command line: the parser, one module per command group, and the exit-code contract."""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
