"""The load generator against a server that closes a keep-alive connection just as the next request arrives
(what uvicorn does to a connection idle for 5 s): that request goes again on a new connection, once; a
connection closed in the middle of an answer fails the run."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from bench.common import load

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a server dropping the connection does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


@asynccontextmanager
async def http_server(answer: Callable[[asyncio.StreamWriter, int], bool]) -> AsyncIterator[tuple[int, list[int]]]:
    """A server that reads requests and lets ``answer(writer, n)`` respond to the connection's n-th (from 0);
    it closes the connection when ``answer`` says False. Yields its port and the requests per connection."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(0)
        me = len(served) - 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                if not answer(writer, served[me]):
                    return
                served[me] += 1
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], served


async def test_a_request_meeting_a_closed_idle_connection_goes_again_on_a_new_one() -> None:
    def one_per_connection(writer: asyncio.StreamWriter, n: int) -> bool:
        if n >= 1:  # the second request on a connection: dropped unread, as an idle close does
            reset(writer)
            return False
        writer.write(OK)
        return True

    async with http_server(one_per_connection) as (port, served):
        result = await load(port, [{"method": "GET", "path": "/"} for _ in range(4)], connections=1)
    assert result["statuses"] == [200, 200, 200, 200]
    assert served == [1, 1, 1, 1]  # every request after the first came on a new connection


async def test_a_connection_closed_in_the_middle_of_an_answer_fails_the_run() -> None:
    def half_an_answer(writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        reset(writer)
        return False

    async with http_server(half_an_answer) as (port, served):
        with pytest.raises(SystemExit, match="load generator failed"):
            await load(port, [{"method": "GET", "path": "/"}], connections=1)
    assert served == [0]  # sent once, not again
