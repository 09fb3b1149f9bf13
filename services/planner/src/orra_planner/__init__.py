"""Orra planner service."""

__all__: list[str] = []
