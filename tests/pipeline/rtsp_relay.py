"""A minimal RTSP relay for tests (what mediamtx does, in a hundred lines): ``ffmpeg -f rtsp``
publishes a stream to it (ANNOUNCE/RECORD) and a client plays it (DESCRIBE/PLAY), both with
RTP interleaved on the RTSP TCP connection. ffmpeg alone cannot serve RTSP to a player.

Loopback only; one stream; no authentication. Closing the relay drops every connection, as
a camera or RTSP server going away does.
"""

from __future__ import annotations

import socket
import threading


class RtspRelay:
    """Relay the RTP packets of the publisher to every player."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sdp: bytes | None = None
        self._players: list[tuple[socket.socket, threading.Lock]] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", port))
        self._server.listen(8)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed = True
        for s in [self._server, *self._conns]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        wlock = threading.Lock()
        publisher = False
        try:
            while True:
                first = rfile.read(1)
                if not first:
                    return
                if first == b"$":  # an interleaved RTP/RTCP packet
                    head = rfile.read(3)
                    payload = rfile.read(int.from_bytes(head[1:3], "big"))
                    if publisher:
                        self._forward(first + head + payload)
                    continue
                lines = [first + rfile.readline()]
                while lines[-1] not in (b"\r\n", b"\n", b""):
                    lines.append(rfile.readline())
                method, url = lines[0].decode().split()[:2]
                headers = {}
                for line in lines[1:-1]:
                    key, _, value = line.decode().partition(":")
                    headers[key.strip().lower()] = value.strip()
                body = rfile.read(int(headers.get("content-length", 0) or 0))
                reply: dict[str, str] = {"CSeq": headers.get("cseq", "0")}
                out_body = b""
                status = "200 OK"
                if method == "OPTIONS":
                    reply["Public"] = "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, TEARDOWN, GET_PARAMETER"
                elif method == "ANNOUNCE":
                    self.sdp, publisher = body, True
                elif method == "DESCRIBE":
                    if self.sdp is None:
                        status = "404 Not Found"
                    else:
                        reply["Content-Base"] = url.rstrip("/") + "/"
                        reply["Content-Type"] = "application/sdp"
                        out_body = self.sdp
                elif method == "SETUP":
                    reply["Transport"] = headers.get("transport", "")
                    reply["Session"] = "4f2a9c1d;timeout=60"
                elif method in ("RECORD", "PLAY"):
                    reply["Session"] = "4f2a9c1d"
                    if method == "PLAY":
                        reply["Range"] = "npt=0.000-"
                elif method == "TEARDOWN":
                    self._send(conn, wlock, self._response(status, reply, b""))
                    return
                self._send(conn, wlock, self._response(status, reply, out_body))
                if method == "PLAY":
                    with self._lock:
                        self._players.append((conn, wlock))
        except (OSError, ValueError, IndexError):
            return
        finally:
            with self._lock:
                self._players = [(c, lk) for c, lk in self._players if c is not conn]
            if publisher:
                self.sdp = None
            conn.close()

    @staticmethod
    def _response(status: str, headers: dict[str, str], body: bytes) -> bytes:
        head = f"RTSP/1.0 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    @staticmethod
    def _send(conn: socket.socket, lock: threading.Lock, data: bytes) -> None:
        with lock:
            conn.sendall(data)

    def _forward(self, packet: bytes) -> None:
        with self._lock:
            players = list(self._players)
        for conn, lock in players:
            try:
                self._send(conn, lock, packet)
            except OSError:
                with self._lock:
                    self._players = [(c, lk) for c, lk in self._players if c is not conn]
