"""The replica: what orders, fetches, checks, applies and admits blocks and transactions."""
