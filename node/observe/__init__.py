"""Observability: metrics, health and logs, read from what components publish."""
