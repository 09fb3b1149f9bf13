"""The orra command line."""

__all__: list[str] = []
