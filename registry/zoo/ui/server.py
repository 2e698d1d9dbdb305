"""``zoo ui``: a read-only web server over a registry (the standard library's threading HTTP server).

Why :mod:`http.server` and not an ASGI stack: the UI serves a handful of server-rendered pages to one
person on 127.0.0.1; a thread per request keeps it responsive while another page renders (tested), and
zoo gains no dependency, so ``zoo ui`` works wherever ``zoo list`` does.

Invariants:

- it never writes: it calls only the registry's read methods, through a small pool of registries
  opened by the caller's ``opener`` (one connection each: SQLite connections are per thread, a
  PostgreSQL connection is per registry);
- no URL reaches a file: the routes are ``/``, ``/m/NAME``, ``/v/NAME/N`` and ``/compare``; names are
  checked by :func:`zoo._names.validate_name` before any lookup; nothing is served from disk;
- every response carries a Content-Security-Policy allowing no request at all (the page's one style
  and one script are inline, allowed by hash), ``nosniff``, ``no-referrer`` and ``frame-ancestors 'none'``;
  a ``Host`` other than the address it serves is refused (no DNS rebinding into a store's contents);
- the models page filters an :class:`~zoo.ui.pages.Index` read at start and re-read in the background
  when it is older than ``refresh_s`` and a page asks; the page says when it was read.
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import InvalidInput, NotFound, ZooError
from . import pages
from ._html import CSP, esc, page

POOL = 4
REFRESH_S = 10.0


class UIState:
    """The registries the handlers borrow and the models index they share."""

    def __init__(self, opener: Callable[[], Any], *, where: str, pool: int = POOL, refresh_s: float = REFRESH_S):
        self.where = where
        self.refresh_s = refresh_s
        self._opener = opener
        self._pool: queue.Queue[Any] = queue.Queue()
        self._opened = 0
        self._size = pool
        self._open_lock = threading.Lock()
        with self.registry() as registry:
            self.index = pages.Index.build(registry)
        self._refreshing = threading.Lock()

    @contextmanager
    def registry(self) -> Iterator[Any]:
        """Borrow a registry (opening one while fewer than ``pool`` exist, else waiting for one)."""
        try:
            reg = self._pool.get_nowait()
        except queue.Empty:
            with self._open_lock:
                make = self._opened < self._size
                if make:
                    self._opened += 1
            reg = self._opener() if make else self._pool.get()
        try:
            yield reg
        finally:
            self._pool.put(reg)

    def current_index(self) -> pages.Index:
        """The index; when stale, a background thread re-reads it (this request is served from the old one)."""
        if time.time() - self.index.built_at > self.refresh_s and self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh, name="zoo-ui-index", daemon=True).start()
        return self.index

    def _refresh(self) -> None:
        try:
            with self.registry() as registry:
                self.index = pages.Index.build(registry)
        except Exception as exc:  # the store went away: keep serving what was read, say so on stderr
            print(f"zoo ui: could not re-read the store: {exc}", file=sys.stderr)
        finally:
            self._refreshing.release()

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return


def _status(exc: ZooError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidInput) or exc.exit_code == 2:
        return 400
    return 503


class Handler(BaseHTTPRequestHandler):
    server_version = "zoo-ui"
    sys_version = ""
    state: UIState  # set on the subclass made by make_server
    allowed_hosts: frozenset[str] = frozenset()
    quiet = False

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _refuse(self) -> None:
        self._send(405, page("405", "<h1>Read-only</h1><p>This UI only reads the registry.</p>", where=self.state.where),
                   head=False, extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _respond(self, *, head: bool) -> None:
        start = time.perf_counter()
        host = (self.headers.get("Host") or "").lower()
        if self.allowed_hosts and host not in self.allowed_hosts:
            self._send(421, page("421", "<h1>Wrong host</h1>", where=""), head=head)
            return
        try:
            status, title, body = 200, *self._route()
        except ZooError as exc:
            status, title = _status(exc), "error"
            body = f"<h1>{status}</h1><p>{esc(exc.message)}</p>" + (f'<p class="mute">hint: {esc(exc.hint)}</p>' if exc.hint else "")
        except Exception as exc:  # a bug: a short page, the details on the server's stderr only
            status, title, body = 500, "error", "<h1>500</h1><p>internal error; the server's terminal has the details</p>"
            print(f"zoo ui: internal error on {self.path!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
        self._send(status, page(f"{title} - zoo", body, where=self.state.where), head=head)
        if not self.quiet:
            print(f"{self.command} {self.path[:200]!r} {status} {1000 * (time.perf_counter() - start):.0f} ms", file=sys.stderr)

    def _route(self) -> tuple[str, str]:
        url = urlsplit(self.path)
        try:
            fields = parse_qs(url.query, keep_blank_values=True, max_num_fields=64)
        except ValueError:
            raise InvalidInput("Expected at most 64 query fields. Received more", hint="compare at most 8 versions") from None
        query = {k: v[-1] for k, v in fields.items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        state = self.state
        if not parts:
            return "models", pages.models_page(state.current_index(), query)
        with state.registry() as registry:
            if parts[0] == "m" and len(parts) == 2:
                return parts[1], pages.model_page(registry, state.current_index(), parts[1], query)
            if parts[0] == "v" and len(parts) == 3:
                return f"{parts[1]}@{parts[2]}", pages.version_page(registry, state.current_index(), parts[1], parts[2])
            if parts == ["compare"]:
                refs = fields.get("ref", [])
                return "compare", pages.compare_page(registry, refs)
        raise NotFound(f"No page at {url.path[:100]!r}", hint="pages: /, /m/NAME, /v/NAME/N, /compare?ref=A&ref=B")

    def _send(self, status: int, text: str, *, head: bool, extra: dict[str, str] | None = None) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        for key, value in {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(data)),
                           "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store",
                           **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is printed by _respond


def make_server(opener: Callable[[], Any], *, host: str = "127.0.0.1", port: int = 8080, where: str = "",
                quiet: bool = False, refresh_s: float = REFRESH_S) -> tuple[ThreadingHTTPServer, UIState]:
    """A server bound to ``host:port`` (port 0: any free one), not yet serving; ``serve_forever()`` runs it."""
    state = UIState(opener, where=where, refresh_s=refresh_s)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    bound = server.server_address[1]
    hosts = {f"{host}:{bound}", f"127.0.0.1:{bound}", f"localhost:{bound}", f"[::1]:{bound}"}
    if host in ("0.0.0.0", "::"):
        hosts = set()  # bound to every interface on purpose: any Host is fine
    handler = type("BoundHandler", (Handler,), {"state": state, "allowed_hosts": frozenset(h.lower() for h in hosts),
                                                 "quiet": quiet})
    server.RequestHandlerClass = handler
    return server, state


__all__ = ["Handler", "UIState", "make_server"]
