"""The protocol-neutral chat core: one request shape, typed answer pieces, the relay loop.

Front ends translate their requests into a ``ChatRequest`` and choose a ``WireFormat``; the
upstream client turns its stream into pieces. Neither knows the other.
"""
