"""One client SSL context per container, shared by the Zhipu and DynamoDB connection pools.

Building a context loads the whole CA bundle (about 17 ms on a cold start here); httpx would build
one per transport. Verification is always on: ``TLS_CA_BUNDLE`` (``Settings.tls_ca_bundle``) only
chooses which authorities are trusted, e.g. a local test CA for the benchmarks' HTTPS upstream.
"""

from __future__ import annotations

import ssl

_contexts: dict[str, ssl.SSLContext] = {}


def client_context(ca_bundle: str = "") -> ssl.SSLContext:
    """The verifying context trusting ``ca_bundle`` (a PEM file), or certifi's bundle as httpx
    does when it is empty; built once per bundle and then shared."""
    context = _contexts.get(ca_bundle)
    if context is None:
        if ca_bundle:
            cafile = ca_bundle
        else:
            import certifi

            cafile = certifi.where()
        context = ssl.create_default_context(cafile=cafile)
        _contexts[ca_bundle] = context
    return context
