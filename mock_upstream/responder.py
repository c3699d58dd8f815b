"""Plays a script of steps over ASGI and notices when the client goes away.

Detecting a departed client needs its own task: while the script sleeps (a stall, a slow first
token) nothing is written, so only a pending `receive()` learns of the disconnect. That watcher
cancels the script at once, so the request is logged as `client_gone` the moment it happens.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import anyio.lowlevel
from starlette.types import Receive, Scope, Send

from mock_upstream import plan
from mock_upstream.recorder import Recorder, RequestRecord

# With no delay between chunks nothing in the script would ever yield to the event loop; let other
# connections (and the disconnect watcher) in every this many frames.
_YIELD_EVERY = 32


class Responder:
    """An ASGI response made of a `plan` script, logged into `record`."""

    def __init__(
        self,
        steps: Iterator[plan.Step],
        recorder: Recorder,
        record: RequestRecord,
        streaming: bool = False,
    ) -> None:
        self._steps = steps
        self._recorder = recorder
        self._record = record
        self._streaming = streaming  # counts in the stream statistics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record, recorder = self._record, self._recorder
        recorder.opened(record, self._streaming)
        state = {"finished": False, "gone": False}
        outcome = "aborted"  # replaced unless the server itself cancels us (shutdown)
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    # After the last byte the server reports a disconnect too; that one is normal.
                    if not state["finished"]:
                        state["gone"] = True
                        group.cancel_scope.cancel()

                group.start_soon(watch)
                outcome = await self._play(send, state)
                group.cancel_scope.cancel()
            if state["gone"]:
                outcome = "client_gone"
        finally:
            recorder.closed(record, outcome)

    async def _play(self, send: Send, state: dict[str, bool]) -> str:
        record = self._record
        frames = 0
        for step in self._steps:
            if isinstance(step, plan.Sleep):
                await anyio.sleep(step.seconds)
            elif isinstance(step, plan.Start):
                record.status = step.status
                headers = [(k.encode(), v.encode("latin-1")) for k, v in step.headers.items()]
                start = {"type": "http.response.start", "status": step.status, "headers": headers}
                await send(start)
            elif isinstance(step, plan.Send):
                await send({"type": "http.response.body", "body": step.data, "more_body": True})
                if step.piece:
                    record.chunks_sent += 1
                frames += 1
                if frames % _YIELD_EVERY == 0:
                    await anyio.lowlevel.checkpoint()
            elif isinstance(step, plan.Drop):
                # Returning with the body unfinished makes the server close the connection.
                return "dropped"
        state["finished"] = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return "completed"
