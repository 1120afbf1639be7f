"""The gunicorn worker: gunicorn's threaded worker, with whole requests read before a thread takes them.

gunicorn's `gthread` reads each request in the thread that answers it, so clients that send
their headers or body one byte at a time hold every thread, and policy fetches wait behind
them. This worker reads a request in the worker's event loop, as nginx would, and hands it
to a thread only once it is all there (headers, and a body of up to MAX_BUFFERED_BODY bytes
announced by Content-Length); a request not complete within REQUEST_READ_SECONDS gets a 408.
Policy fetches (`Host: mta-sts.*`) then go to threads of their own, which only read the
in-process snapshot: they wait neither on uploads nor on the database.
"""

import contextlib
import errno
import os
import selectors
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

MAX_HEAD = 64 * 1024  # larger heads go to gunicorn's parser, which refuses them
MAX_BUFFERED_BODY = 16 * 1024 * 1024  # above it the application refuses by Content-Length, unread
READ_CHUNK = 256 * 1024
TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
CONTINUE_ANSWER = b"HTTP/1.1 100 Continue\r\n\r\n"


def _setting(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


class RequestReader:
    """What has arrived of one request, and whether it is complete."""

    def __init__(self, deadline: float, data: bytes = b""):
        self.deadline = deadline
        self.data = bytearray(data)
        self.needed: int | None = None  # bytes of head and body, once the head is read
        self.chunked_from: int | None = None  # where a chunked body begins
        self.policy_fetch = False
        self.expects_continue = False

    def complete(self) -> bool:
        if self.needed is None:
            head_end = self.data.find(b"\r\n\r\n")
            if head_end < 0:
                return len(self.data) > MAX_HEAD
            self._read_head(bytes(self.data[:head_end]), head_end + 4)
        if self.chunked_from is not None:
            return self._chunks_complete()
        return len(self.data) >= self.needed

    def _chunks_complete(self) -> bool:
        """Whether the chunked body has arrived up to its last chunk and trailers (RFC 9112 section 7.1);
        odd chunks and bodies above MAX_BUFFERED_BODY go on to gunicorn's parser, which decides."""
        if len(self.data) - self.chunked_from > MAX_BUFFERED_BODY:
            return True
        position = self.chunked_from
        while True:
            line_end = self.data.find(b"\r\n", position)
            if line_end < 0:
                return False
            size_text = bytes(self.data[position:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                return True
            if size == 0:  # then the trailer section, ended by an empty line
                return self.data.find(b"\r\n\r\n", line_end) >= 0
            position = line_end + 2 + size + 2
            if position > len(self.data):
                return False

    def _read_head(self, head: bytes, head_length: int) -> None:
        lengths, chunked = [], False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"host":
                self.policy_fetch = value.lower().startswith(b"mta-sts.")
            elif name == b"expect":
                self.expects_continue = value.lower() == b"100-continue"
        body = int(lengths[0]) if len(lengths) == 1 and lengths[0].isdigit() else 0
        if body > MAX_BUFFERED_BODY or chunked and lengths:
            body = 0  # the application refuses it by its length, gunicorn's parser refuses odd heads
        elif chunked:
            self.chunked_from = head_length
        self.needed = head_length + body
        self.policy_fetch = self.policy_fetch and body == 0 and not chunked


class BufferingThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_seconds = _setting("GUNICORN_REQUEST_READ_SECONDS", 30)
        self.max_reading = int(_setting("GUNICORN_MAX_READING_CONNECTIONS", 512))
        self.reading: OrderedDict[TConn, RequestReader] = OrderedDict()  # oldest first
        self.policy_pool = None

    def init_process(self):
        self.policy_pool = ThreadPoolExecutor(max_workers=int(_setting("GUNICORN_POLICY_THREADS", 2)))
        super().init_process()

    def accept(self, listener):
        if self.cfg.is_ssl:
            return super().accept(listener)
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return None
            raise
        self._start_reading(TConn(self.cfg, client, address, listener.getsockname()))
        return None

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection sends its next request: read it whole first, off the count of busy ones."""
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.nr_conns -= 1
        self._start_reading(conn)
        return None

    def _start_reading(self, conn: TConn, data: bytes = b"") -> None:
        reader = RequestReader(time.monotonic() + self.read_seconds, data)
        if data and reader.complete():
            self._dispatch(conn, reader)
            return
        if len(self.reading) >= self.max_reading:
            oldest, _ = self.reading.popitem(last=False)  # the slowest client makes room
            self._drop(oldest)
        conn.sock.setblocking(False)
        self.reading[conn] = reader
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: TConn, client) -> None:
        reader = self.reading[conn]
        try:
            data = conn.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client sent all it will: a request cut short is answered as it stands
            self.reading.pop(conn)
            if reader.needed is None:
                self._drop(conn)
            else:
                self._dispatch(conn, reader)
            return
        reader.data += data
        had_head = reader.needed is not None
        if reader.complete():
            self.reading.pop(conn)
            self._dispatch(conn, reader)
        elif not had_head and reader.needed is not None and reader.expects_continue:
            self._send_quietly(conn, CONTINUE_ANSWER)

    def _dispatch(self, conn: TConn, reader: RequestReader) -> None:
        with contextlib.suppress(KeyError):
            self.poller.unregister(conn.sock)
        self.nr_conns += 1
        conn.buffered, conn.policy_fetch, conn.data_ready = bytes(reader.data), reader.policy_fetch, True
        self.enqueue_req(conn)

    def enqueue_req(self, conn):
        if getattr(conn, "buffered", None) is None and not self.cfg.is_ssl:
            # A request pipelined behind the one just answered (finish_request found its first
            # bytes): it too is read whole before a thread takes it.
            self.nr_conns -= 1
            self._start_reading(conn, conn.parser.unreader.take_buffered())
            return
        pool = self.policy_pool if getattr(conn, "policy_fetch", False) else self.tpool
        conn.policy_fetch = False
        future = pool.submit(self.handle, conn)
        future.add_done_callback(lambda done: self.method_queue.defer(self.finish_request, conn, done))

    def handle(self, conn):
        buffered = getattr(conn, "buffered", None)
        if buffered is not None:
            conn.buffered = None
            conn.init()
            conn.parser.unreader.unread(buffered)
        return super().handle(conn)

    def murder_pending(self):
        """Also end the requests not read in time (called by the event loop about once a second)."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading:
            conn, reader = next(iter(self.reading.items()))
            if reader.deadline > now:
                break
            self.reading.pop(conn)
            self._send_quietly(conn, TIMEOUT_ANSWER)
            self._drop(conn)

    def run(self):
        try:
            super().run()
        finally:
            for conn in self.reading:
                conn.close()
            self.policy_pool.shutdown(wait=False)

    def _drop(self, conn: TConn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        conn.close()

    @staticmethod
    def _send_quietly(conn: TConn, answer: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sock.send(answer)

