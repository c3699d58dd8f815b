"""Zhipu's side: credentials, the key pool, the streaming client, its wire format and its errors."""

from glm_relay.upstream.client import ZhipuClient
from glm_relay.upstream.credentials import CredentialStore
from glm_relay.upstream.health import KeyHealth
from glm_relay.upstream.keys import ApiKey, PoolKey, parse_key_pool
from glm_relay.upstream.stream import UpstreamStream

__all__ = [
    "ApiKey",
    "CredentialStore",
    "KeyHealth",
    "PoolKey",
    "UpstreamStream",
    "ZhipuClient",
    "parse_key_pool",
]
