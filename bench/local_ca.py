"""A throwaway certificate authority for the HTTPS fake Zhipu (``trustme``).

It writes, into a temporary directory: the server's certificate chain and key for ``127.0.0.1``,
the CA alone (for the timing client), and a bundle of certifi's authorities plus this one. The
function is pointed at the bundle through ``TLS_CA_BUNDLE``, so it loads as many authorities as
in production (the size of the bundle is most of what building an SSL context costs) and still
verifies every certificate.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from pathlib import Path


class LocalCA:
    """The files; ``close()`` removes them."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        import certifi
        import trustme

        self.directory = Path(tempfile.mkdtemp(prefix="glm-relay-ca-"))
        ca = trustme.CA()
        server = ca.issue_cert(host)
        self.cert_chain = self.directory / "server-chain.pem"
        self.key = self.directory / "server-key.pem"
        self.ca = self.directory / "ca.pem"
        self.bundle = self.directory / "bundle.pem"
        server.private_key_pem.write_to_path(str(self.key))
        self.cert_chain.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
        ca.cert_pem.write_to_path(str(self.ca))
        self.bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca.cert_pem.bytes())

    def client_context(self) -> ssl.SSLContext:
        """A verifying context that trusts this CA only (the timing client's)."""
        return ssl.create_default_context(cafile=str(self.ca))

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
