"""Crossbill's deterministic core: no I/O, no clock, no randomness.

`node` imports `protocol`, never the reverse. See docs/adr/ for the decisions behind the
encoding, hashing and replay protection.
"""
