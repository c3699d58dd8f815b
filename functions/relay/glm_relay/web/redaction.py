"""Query strings made safe for logs: secret-looking values replaced, everything else kept."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

REDACTED = "REDACTED"
# A query parameter is secret-looking when one of the words of its name (split on "_", "-", "."
# and camelCase) is one of these, or its name contains one of the substrings.
_SECRET_PARAM_WORDS = frozenset(
    {
        "token",
        "jwt",
        "key",
        "apikey",
        "secret",
        "password",
        "passwd",
        "pwd",
        "sig",
        "signature",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "session",
        "sessionid",
        "code",
    }
)
_SECRET_PARAM_PARTS = ("secret", "passw", "credential")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NAME_WORD_SEPARATORS = re.compile(r"[^a-z0-9]+")


def redact_query(raw_query: str) -> str:
    """The query string with secret-looking values replaced by ``REDACTED``, for logging.

    Redacts ``access_token`` and any parameter whose name looks like a credential: a word of the
    name is ``token``, ``key``, ``sig``, ``signature``, ``auth``, ``jwt``, ``code``, ... (so
    ``id_token``, ``apiKey`` and ``X-Amz-Signature`` are redacted, ``max_tokens`` is not), or the
    name contains ``secret``, ``passw`` or ``credential``. Everything else, including order and
    percent-encoding, is kept verbatim.

    >>> redact_query("model=glm-4&access_token=eyJ.x.y&stream=1")
    'model=glm-4&access_token=REDACTED&stream=1'
    """
    if not raw_query:
        return raw_query
    prefix, body = ("?", raw_query[1:]) if raw_query.startswith("?") else ("", raw_query)
    parts = []
    for part in body.split("&"):
        name, sep, value = part.partition("=")
        if sep and value and _is_secret_param(name):
            part = f"{name}={REDACTED}"
        parts.append(part)
    return prefix + "&".join(parts)


def _is_secret_param(raw_name: str) -> bool:
    name = _CAMEL_BOUNDARY.sub("_", unquote_plus(raw_name)).lower()
    words = set(_NAME_WORD_SEPARATORS.split(name))
    return bool(words & _SECRET_PARAM_WORDS) or any(part in name for part in _SECRET_PARAM_PARTS)
