"""Orra notifier service."""

__all__: list[str] = []
