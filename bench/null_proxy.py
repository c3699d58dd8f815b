"""A do-nothing asyncio TCP proxy: the floor of what any Python hop adds per chunk here.

Bytes from the client go to the fake Zhipu and back, one ``read`` and one ``write`` each, with no
parsing. The per-chunk latency it adds is what a relay pays before doing any work of its own
(a wake-up of one more process, a read and a write syscall), on this machine.

    python -m bench.null_proxy HOST PORT    # prints "null proxy ready port=N"
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys

READY_PREFIX = "null proxy ready port="


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(262144):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _serve(upstream: tuple[str, int]) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    print(READY_PREFIX + str(server.sockets[0].getsockname()[1]), flush=True)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 2:
        print("usage: python -m bench.null_proxy HOST PORT", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve((args[0], int(args[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
