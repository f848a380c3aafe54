"""Many loopback TLS endpoints from one process: one asyncio loop listening on N ports.

    python many_tls.py N DIRECTORY

Issues a lab certificate for ``localhost`` and 127.0.0.1 into DIRECTORY, listens on N
ephemeral ports of 127.0.0.1 with TLS 1.2 and 1.3, prints ``{"ca": PEM, "ports": [...]}``
on one line, and serves until its stdin closes. Each connection gets a one-line HTTP
answer once the handshake is done; a probe that stops mid-handshake is simply dropped.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from pathlib import Path

from checks.tls import lab

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.wait_for(reader.read(4096), 5)
        writer.write(ANSWER)
        await writer.drain()
    except (OSError, TimeoutError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def serve(count: int, directory: Path) -> None:
    pki = lab.Pki(directory)
    context = lab.server_context(pki.issue(["localhost", "127.0.0.1"]))
    servers = [
        await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=64)
        for _ in range(count)
    ]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    print(json.dumps({"ca": pki.ca_file, "ports": ports}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()


def main() -> None:
    asyncio.run(serve(int(sys.argv[1]), Path(sys.argv[2])))


if __name__ == "__main__":
    main()
