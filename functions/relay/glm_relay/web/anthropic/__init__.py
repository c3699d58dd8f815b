"""Anthropic's Messages API (``/v1/messages``) as a front end on the chat core.

Three parts, as every protocol here: ``request.py`` (with ``blocks.py``) turns a request into a
``ChatRequest``; ``events.py`` writes relay pieces as Messages events (or one message);
``errors.py`` writes failures in Anthropic's shape. Thinking blocks are signed with
``chat/sealed.py``, so their reasoning can be replayed. ``endpoints.py`` is imported on the first
``/v1/messages`` request; the error shape is imported with the route table (it is light).
"""
