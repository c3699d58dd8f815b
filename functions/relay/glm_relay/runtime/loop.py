"""The streaming runtime loop: Runtime API events in, function-URL response streams out.

Managed Python runtimes buffer the whole response, so ``functions/relay/bootstrap`` (the
``AWS_LAMBDA_EXEC_WRAPPER`` target) replaces the managed loop with this one, on the same
interpreter: ``python -m glm_relay.runtime``.

For each invocation the loop calls ``handle(event, context)`` (named by ``_HANDLER``) and streams
the ``StreamingResponse`` it returns: the prelude JSON and 8 NUL bytes as the first HTTP chunk, then
each body frame as its own chunk, written the moment the body yields it. All invocations run in one
event loop, so clients the handler keeps (httpx) stay bound to a live loop across invocations.

Lambda never tells a function that the browser went away, so a body runs to its end; the loop stops
early only if the Runtime API connection itself breaks. Either way the body is ``aclose()``d, which
releases whatever it holds (the upstream request).

Only the standard library is imported here: this module is on the cold-start path, and the
``runtime`` package is a library of its own that knows nothing of the relay.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from glm_relay.runtime.api import (
    ERROR_BODY_HEADER,
    ERROR_TYPE_HEADER,
    NextInvocation,
    RuntimeAPIClient,
    RuntimeAPIError,
)
from glm_relay.runtime.context import InvocationContext
from glm_relay.runtime.response import StreamingResponse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    Handler = Callable[[dict[str, Any], InvocationContext], Awaitable[StreamingResponse]]

RUNTIME_API_ENV = "AWS_LAMBDA_RUNTIME_API"
HANDLER_ENV = "_HANDLER"
DEFAULT_HANDLER = "glm_relay.handler.handle"
# Lambda runtimes expose the current invocation's X-Ray trace header in this variable.
TRACE_ID_ENV = "_X_AMZN_TRACE_ID"

# The function URL splits the stream at the first 8 NUL bytes: before them the prelude JSON
# (statusCode, headers, cookies), after them the raw HTTP body. JSON text never contains a raw NUL
# byte (json.dumps escapes it as \u0000), so the delimiter cannot occur inside the prelude.
PRELUDE_DELIMITER = b"\x00" * 8

# Error types for failures of the runtime itself, named as AWS's own runtimes name them.
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"

EXIT_FAILURE = 1


class InitError(Exception):
    """The handler could not be loaded; reported to /runtime/init/error."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def main() -> None:
    """Entry point of ``python -m glm_relay.runtime``; exits (non-zero) only on a fatal error."""
    sys.exit(asyncio.run(run()))


async def run() -> int:
    """Load the handler, then serve invocations until the Runtime API fails; the exit status."""
    address = os.environ.get(RUNTIME_API_ENV)
    if not address:
        _log(
            "runtime cannot start", errorType="Runtime.MissingEnvironment", variable=RUNTIME_API_ENV
        )
        return EXIT_FAILURE
    api = RuntimeAPIClient(address)
    try:
        handler = load_handler(os.environ.get(HANDLER_ENV) or DEFAULT_HANDLER)
    except InitError as exc:
        _log("init failed", errorType=exc.error_type, errorMessage=str(exc))
        try:
            await api.post_init_error(exc.error_type, _error_body(exc.error_type, str(exc)))
        except (OSError, asyncio.IncompleteReadError, RuntimeAPIError) as post_exc:
            _log("init error not reported", errorType=type(post_exc).__name__)
        return EXIT_FAILURE
    try:
        await serve(api, handler)
    except (OSError, asyncio.IncompleteReadError, RuntimeAPIError) as exc:
        # A lost Runtime API, a 5xx answer or an answer that is not HTTP (MalformedAnswer) is
        # not recoverable: exit non-zero and let Lambda replace the sandbox.
        _log("runtime API failed", errorType=type(exc).__name__, errorMessage=str(exc))
    finally:
        await api.close()
    return EXIT_FAILURE


def load_handler(spec: str) -> Handler:
    """Import ``module.attr`` once, at init.

    Raises:
        InitError: with the Lambda error type for a malformed name, a failed import, or a missing
            or non-callable attribute.
    """
    module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise InitError(MALFORMED_HANDLER_NAME, f"Bad handler '{spec}': expected module.function")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise InitError(
            USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {exc}"
        ) from exc
    except Exception as exc:
        raise InitError(
            IMPORT_MODULE_ERROR,
            f"Unable to import module '{module_name}': {type(exc).__name__}: {exc}",
        ) from exc
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise InitError(HANDLER_NOT_FOUND, f"Handler '{attr}' missing on module '{module_name}'")
    return handler


async def serve(api: RuntimeAPIClient, handler: Handler) -> None:
    """Handle invocations one after another, forever, in the running event loop."""
    while True:
        invocation = await api.next_invocation()
        await invoke(api, handler, invocation)


async def invoke(api: RuntimeAPIClient, handler: Handler, invocation: NextInvocation) -> None:
    """Run one invocation: call the handler, then stream its response or report its failure."""
    request_id = invocation.request_id
    if invocation.trace_id:
        os.environ[TRACE_ID_ENV] = invocation.trace_id
    else:
        os.environ.pop(TRACE_ID_ENV, None)
    context = InvocationContext(
        aws_request_id=request_id,
        deadline_ms=invocation.deadline_ms,
        invoked_function_arn=invocation.invoked_function_arn,
        trace_id=invocation.trace_id,
    )
    try:
        event = json.loads(invocation.event)
    except ValueError as exc:
        await _report_before_first_byte(api, request_id, UNMARSHAL_ERROR, exc)
        return

    try:
        body, first_chunk = await call_handler(handler, event, context)
    except HandlerFailed as failed:
        await _report_before_first_byte(api, request_id, failed.error_type, failed.cause)
        return

    await _stream(api, request_id, first_chunk, body)


class HandlerFailed(Exception):
    """The handler raised, or returned something that is not a streaming response."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.error_type = _error_type(cause)


async def call_handler(
    handler: Handler, event: Any, context: InvocationContext
) -> tuple[AsyncIterator[bytes], bytes]:
    """Call the handler and check its answer: the body, and the first chunk of the stream (the
    prelude and its delimiter). A local server that stands in for a function URL calls this too,
    so it serves exactly what the runtime would send.

    Raises:
        HandlerFailed: before any byte of the response exists (the body, if any, is closed).
    """
    response: object = None
    try:
        response = await handler(event, context)
        if not isinstance(response, StreamingResponse):
            raise TypeError(f"handler returned {type(response).__name__}, not StreamingResponse")
        if not hasattr(response.body, "__anext__"):
            raise TypeError("StreamingResponse.body must be an async iterator of bytes")
        return response.body, response.prelude() + PRELUDE_DELIMITER
    except Exception as exc:
        if isinstance(response, StreamingResponse):
            await close_body(response.body, context.aws_request_id)
        raise HandlerFailed(exc) from exc


async def _stream(
    api: RuntimeAPIClient, request_id: str, first_chunk: bytes, body: AsyncIterator[bytes]
) -> None:
    """POST the response stream; a body error becomes the two error trailers."""
    error: Exception | None = None
    try:
        stream = await api.start_response(request_id, first_chunk)
        error = await pump(body, stream.send)
        # After the first byte, /error is no longer allowed: the failure travels in the trailers.
        await stream.end(_error_trailers(error) if error is not None else ())
    except RuntimeAPIError as exc:
        if exc.fatal:
            raise
        _log("response rejected", requestId=request_id, errorMessage=str(exc))
    except (OSError, asyncio.IncompleteReadError) as exc:
        # The Runtime API connection broke halfway: nobody can read the rest, so stop producing
        # it (the finally below closes the body) and start afresh on a new connection.
        api.discard_connection()
        _log("response stream lost", requestId=request_id, errorType=type(exc).__name__)
    finally:
        await close_body(body, request_id)
    if error is not None:
        _log_failure("invocation failed after first byte", request_id, error)


async def pump(
    body: AsyncIterator[bytes], send: Callable[[bytes], Awaitable[None]]
) -> Exception | None:
    """Send every frame as it comes; return the exception the body raised, if any.

    Exceptions raised by ``send`` (a lost connection) propagate: they are not the body's.
    """
    next_frame = body.__anext__
    while True:
        try:
            frame = await next_frame()
        except StopAsyncIteration:
            return None
        except Exception as exc:
            return exc
        if type(frame) is not bytes:
            return TypeError(f"body frames must be bytes, not {type(frame).__name__}")
        # A zero-length chunk would end the HTTP body, so an empty frame is not sent at all.
        if frame:
            await send(frame)


async def close_body(body: AsyncIterator[bytes], request_id: str) -> None:
    """Close the body iterator so whatever it holds open (the upstream request) is released."""
    aclose = getattr(body, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception as exc:
        _log_failure("closing the response body failed", request_id, exc)


async def _report_before_first_byte(
    api: RuntimeAPIClient, request_id: str, error_type: str, exc: Exception
) -> None:
    _log_failure("invocation failed", request_id, exc, error_type)
    try:
        await api.post_invocation_error(request_id, error_type, _error_body(error_type, str(exc)))
    except RuntimeAPIError as post_exc:
        if post_exc.fatal:
            raise
        _log("error report rejected", requestId=request_id, errorMessage=str(post_exc))


def _error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _error_trailers(exc: Exception) -> tuple[tuple[str, str], ...]:
    error_type = _error_type(exc)
    # Header values cannot carry arbitrary text, so the JSON error body travels base64-encoded.
    encoded = base64.b64encode(_error_body(error_type, str(exc))).decode("ascii")
    return ((ERROR_TYPE_HEADER, error_type), (ERROR_BODY_HEADER, encoded))


def _error_type(exc: BaseException) -> str:
    """The exception's class name, kept ASCII: it travels in an HTTP header."""
    return type(exc).__name__.encode("ascii", "replace").decode("ascii")


def _log_failure(
    message: str, request_id: str, exc: BaseException, error_type: str | None = None
) -> None:
    _log(
        message,
        requestId=request_id,
        errorType=error_type or _error_type(exc),
        errorMessage=str(exc),
        stackTrace=traceback.format_exception(exc),
    )


def _log(message: str, **fields: Any) -> None:
    """One JSON line on stdout (CloudWatch). Never pass the event: it carries credentials."""
    print(json.dumps({"level": "ERROR", "message": message, **fields}), flush=True)
