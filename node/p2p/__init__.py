"""Networking of a Crossbill node: libp2p host, gossip topics, request/response streams."""
