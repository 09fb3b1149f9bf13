"""Orra dispatcher service."""

__all__: list[str] = []
