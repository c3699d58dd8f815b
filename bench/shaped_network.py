"""Loopback shaped like a Lambda region's network for ``bench/wan.py``: Zhipu 100 ms, AWS 2 ms away.

This kernel has no ``tc netem``, so delaying TCP proxies on loopback (``bench/latency_proxy.py``)
shape the links:

- Zhipu: the HTTPS fake Zhipu at 100 ms round trip (a region far from Zhipu's endpoint).
- DynamoDB, and Secrets Manager for the SDK: moto at 2 ms (in the function's region), behind an
  HTTPS keep-alive front (``bench/moto_keepalive.py``), since the real endpoints speak HTTPS and
  keep connections.
- The secrets extension: its stand-in reads Secrets Manager through a third proxy at 2 ms over
  plain HTTP, a new connection per read (moto closes each), as a new sandbox's extension does;
  the native extension's TLS handshake (one more 2 ms round trip) is left out, because this
  Python stand-in would spend some 20 ms of CPU setting TLS up where the real one does not.

TLS verifies as in the deployed suite: the certificates are for ``127.0.0.1``, where the proxies
listen. No DNS lookups (addresses are literal) and no bandwidth limit. Each proxy keeps a record
of the connections it carried, which the rounds read to split a cold start into its phases.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from bench.common import REGION, SESSION_TOKEN, Backends
from bench.latency_proxy import LatencyProxy, running_proxy
from bench.moto_keepalive import KeepAliveProxy
from devtools.secrets_extension_standin import SecretsExtensionStandIn

UPSTREAM_ONE_WAY_S = 0.050  # 100 ms round trip to Zhipu
AWS_ONE_WAY_S = 0.001  # 2 ms round trip to DynamoDB and Secrets Manager


@dataclass
class Network:
    """The delaying proxies, the secrets extension behind one, and what a relay's environment
    needs to go through them."""

    upstream: LatencyProxy  # to the HTTPS fake Zhipu
    aws: LatencyProxy  # to moto's HTTPS keep-alive front (DynamoDB; the baseline's secrets)
    secrets: LatencyProxy  # to moto itself, for the extension stand-in
    extension: SecretsExtensionStandIn
    base_path: str
    ca_bundle: str

    def env(self, *, overlap: bool = True) -> dict[str, str]:
        """Over ``Backends.relay_env(..., deployed=True)``: every call through the proxies."""
        aws = f"https://127.0.0.1:{self.aws.port}"
        return {
            "ZHIPU_BASE_URL": f"https://127.0.0.1:{self.upstream.port}{self.base_path}",
            "AWS_ENDPOINT_URL_DYNAMODB": aws,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": aws,
            "AWS_CA_BUNDLE": self.ca_bundle,  # boto3's (the baseline's SDK calls)
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(self.extension.port),
            "QUOTA_OVERLAP": "true" if overlap else "false",
        }

    def mark(self) -> tuple[int, int, int]:
        """Where each proxy's record of connections stands now."""
        return (
            len(self.upstream.connections),
            len(self.aws.connections),
            len(self.secrets.connections),
        )


@contextlib.contextmanager
def shaped_network(backends: Backends) -> Iterator[Network]:
    """The proxies, each on a thread of its own; the extension stand-in reads Secrets Manager
    over plain HTTP through its 2 ms proxy (moto closes every connection, so each read opens a
    new one, as a new sandbox's extension does): a native extension's TLS handshake would add
    one round trip (2 ms), but this Python stand-in's TLS set-up would add 20 ms of CPU that
    the real one does not spend."""
    import boto3

    from devtools.secrets_extension_standin import running_standin

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(backends.ca.cert_chain, backends.ca.key)
    moto = ("127.0.0.1", backends.moto.port)
    front = KeepAliveProxy(moto, server_context)
    front.start()
    try:
        with (
            running_proxy(backends.tls_upstream_address, UPSTREAM_ONE_WAY_S) as upstream,
            running_proxy(("127.0.0.1", front.port), AWS_ONE_WAY_S) as aws,
            running_proxy(moto, AWS_ONE_WAY_S) as secrets,
        ):
            client = boto3.client(
                "secretsmanager",
                endpoint_url=f"http://127.0.0.1:{secrets.port}",
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            with running_standin(token=SESSION_TOKEN, client=client) as extension:
                base_path = backends.tls_base_path
                yield Network(upstream, aws, secrets, extension, base_path, str(backends.ca.bundle))
    finally:
        front.stop()
