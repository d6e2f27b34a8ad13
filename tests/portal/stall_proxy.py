"""A TCP server on 127.0.0.1 that stands in front of a real server and stalls: it
accepts connections and answers nothing until the test opens its gate, then passes
bytes both ways. Its first ``silent`` connections are never answered at all (a server
that hangs), so the client's own timeout has to end them."""

from __future__ import annotations

import contextlib
import socket
import threading


class StallProxy:
    def __init__(self, upstream_port: int, *, silent: int = 0) -> None:
        self.upstream_port, self.silent = upstream_port, silent
        self.gate = threading.Event()
        self.accepted = 0
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = self.accepted
                self.accepted += 1
            threading.Thread(target=self._serve, args=(self._track(conn), index),
                             daemon=True).start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        if index < self.silent:
            self._stop.wait()  # says nothing, ever; closed when the test ends
            return
        while not self.gate.wait(0.2):
            if self._stop.is_set():
                return
        upstream = self._track(socket.create_connection(("127.0.0.1", self.upstream_port)))
        threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
        _pipe(conn, upstream)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
        self._thread.join(5)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
