"""Orra's example e-commerce services."""

__all__: list[str] = []
