"""A TCP relay between tokenmint and PostgreSQL that counts round trips: every Sync (extended
protocol) and Query (simple protocol) message a client sends is one wait for the server's
ReadyForQuery. pg_stat_database counts transactions instead (a transaction of several
statements is one, a statement outside one is one too), and only once each backend flushes its
statistics, up to seconds later; the relay counts what crossed the wire, at once.

    python3 bench/pg_relay.py LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT COUNT_PORT

Clients must not negotiate TLS (`sslmode=disable`): the relay reads their messages. Connecting
to 127.0.0.1:COUNT_PORT answers the count so far and closes.
"""

import asyncio
import struct
import sys

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
round_trips = 0


async def pump_server(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def read_exactly(reader, n):
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        return None


async def client(reader, writer, upstream):
    global round_trips
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError:
        writer.close()
        return
    back = asyncio.ensure_future(pump_server(up_reader, writer))
    try:
        # Start-up messages carry no type byte: an SSL or GSS request (refused by the server,
        # then the real start-up message follows) or the start-up message itself.
        while True:
            head = await read_exactly(reader, 8)
            if head is None:
                return
            length, code = struct.unpack("!ii", head)
            rest = await read_exactly(reader, length - 8)
            if rest is None:
                return
            up_writer.write(head + rest)
            await up_writer.drain()
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                break
        while True:
            head = await read_exactly(reader, 5)
            if head is None:
                return
            kind, length = head[:1], struct.unpack("!i", head[1:])[0]
            body = await read_exactly(reader, length - 4)
            if body is None:
                return
            if kind in (b"S", b"Q"):
                round_trips += 1
            up_writer.write(head + body)
            await up_writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        up_writer.close()
        back.cancel()


async def count(_reader, writer):
    writer.write(f"{round_trips}\n".encode())
    await writer.drain()
    writer.close()


async def main():
    listen, host, port, count_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    relay = await asyncio.start_server(
        lambda r, w: client(r, w, (host, port)), "127.0.0.1", int(listen))
    counter = await asyncio.start_server(count, "127.0.0.1", int(count_port))
    async with relay, counter:
        await asyncio.gather(relay.serve_forever(), counter.serve_forever())


if __name__ == "__main__":
    asyncio.run(main())
