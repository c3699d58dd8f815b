"""The response headers each kind of answer carries, in one place."""

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # Tells nginx-style proxies not to buffer the stream.
    "X-Accel-Buffering": "no",
}
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # The page loads nothing from elsewhere; its script and style are inline.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src *; img-src data:; base-uri 'none'; form-action 'self'"
    ),
}
NO_STORE_HEADERS = {"Cache-Control": "no-store"}
REQUEST_ID_HEADER = "X-Request-Id"
