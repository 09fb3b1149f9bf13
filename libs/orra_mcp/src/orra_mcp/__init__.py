"""Orra and MCP."""
