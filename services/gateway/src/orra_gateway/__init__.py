"""Orra gateway service."""

__all__: list[str] = []
