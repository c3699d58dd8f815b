"""Zhipu's side: credentials, the streaming client, its wire format and its errors."""

from glm_relay.upstream.client import ZhipuClient
from glm_relay.upstream.credentials import ApiKey, CredentialStore
from glm_relay.upstream.stream import UpstreamStream

__all__ = ["ApiKey", "CredentialStore", "UpstreamStream", "ZhipuClient"]
