"""A program a lab starts (``openssl s_server``, say), its port, and its clean stop.

Servers that listen on port 0 say which port they got in their output, others listen
on a port chosen for them: :class:`LabProcess` waits for either, gives up after a
deadline with the program's exit status, and on exit stops the program (terminate,
then kill) and removes its working directory, so a failed test leaves nothing behind.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

PortReader = Callable[[str], int | None]
"""Finds the port in what the program has printed so far (None: not yet)."""


class LabProcess:
    """Run ``command``; find its port from its output (``read_port``) or by polling ``port``.

    stdout goes to a file in a private directory (:attr:`directory`), so a reader sees
    everything printed so far without a pipe that could fill and block the program.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        read_port: PortReader | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        start_timeout: float = 10.0,
        prefix: str = "rempart-lab-",
    ) -> None:
        if read_port is None and not port:
            raise ValueError("a lab process needs a port or a way to read it")
        self.command = list(command)
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.directory = Path(tempfile.mkdtemp(prefix=prefix))
        self._log = self.directory / "stdout"
        self._read_port = read_port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """The program's name, for messages."""
        return " ".join([Path(self.command[0]).name, *self.command[1:2]])

    def output(self) -> str:
        """What the program has printed on stdout so far."""
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def __enter__(self) -> Self:
        with open(self._log, "wb") as log:
            self._process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.DEVNULL, stdin=subprocess.PIPE
            )
        try:
            self.port = self._wait_for_port(self._process)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_for_port(self, process: subprocess.Popen[bytes]) -> int:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            port = self._port_now()
            if port:
                return port
            if process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {process.returncode}")
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not start listening")

    def _port_now(self) -> int | None:
        if self._read_port is not None:
            return self._read_port(self.output())
        return self.port if _is_listening(self.host, self.port) else None

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _is_listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
