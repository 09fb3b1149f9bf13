"""Orra's Python SDK."""

__all__: list[str] = []
