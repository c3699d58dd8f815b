"""The OpenAI Responses API (``/v1/responses``): a front end on the chat core, like ``/v1``.

Three parts, one job each: ``request.py`` (with ``items.py`` and ``tools.py``) reads a request
into a ``ChatRequest``; ``events.py`` writes relay pieces as Responses events (``objects.py``
holds the Response object); ``endpoint.py`` runs them, with errors in OpenAI's shape.
"""

from glm_relay.web.responses.endpoint import ResponsesEndpoints

__all__ = ["ResponsesEndpoints"]
