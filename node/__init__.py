"""Crossbill's I/O shell: trio services around the deterministic `protocol` core."""
