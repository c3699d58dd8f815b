"""The HTTP front ends: ``/chat`` (the relay's events), ``/v1`` (OpenAI's API), the page."""
