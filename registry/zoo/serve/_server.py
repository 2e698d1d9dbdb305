"""The server: served models, the inference path shared by REST and gRPC, alias polling and LISTEN, drain.

Invariant: REST and gRPC call the same :meth:`Server.infer`, so a request means the same thing and fails
with the same message on both; every registry call runs on one dedicated thread (never on the event
loop); ``stop`` stops accepting, lets every request in flight finish (up to ``drain_timeout``), then
closes the batchers.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import InvalidInput, NotFound, RequestTimeout, Unavailable
from ._frontend import message_of, status_of
from ._metrics import Metrics
from ._models import InferRequest, InferResponse, Loaded, ServedModel, ServeOptions, load_version, model_input, output_tensors

log = logging.getLogger("zoo.serve")
access_log = logging.getLogger("zoo.serve.access")

DEFAULT_MAX_BODY = 64 << 20
NOTIFY_CHANNEL = "zoo_alias"


class Server:
    """``zoo serve``: the references given, over REST (``http_port``) and gRPC (``grpc_port``); None turns one
    off, 0 picks a free port (read ``http_port`` / ``grpc_port`` after :meth:`start`)."""

    def __init__(self, refs: Sequence[str], *, store: str | os.PathLike[str] | None = None, artifacts: str | None = None,
                 host: str = "127.0.0.1", http_port: int | None = 8000, grpc_port: int | None = 8001,
                 max_batch_size: int = 8, max_queue_delay_us: int = 0, instances: int = 1, max_queue: int = 256,
                 poll_interval: float = 2.0, request_timeout: float = 30.0, max_body_bytes: int = DEFAULT_MAX_BODY,
                 drain_timeout: float = 30.0, provider: str | None = None, max_pixels: int | None = None,
                 **runtime: Any):
        if not refs:
            raise InvalidInput("Expected at least one model reference to serve. Received: none",
                               hint="e.g. zoo serve resnet50@prod")
        for what, value, low in (("max_batch_size", max_batch_size, 1), ("instances", instances, 1),
                                 ("max_queue", max_queue, 1), ("max_queue_delay_us", max_queue_delay_us, 0),
                                 ("max_body_bytes", max_body_bytes, 1024)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInput(f"Expected {what} to be an integer >= {low}. Received: {value!r}")
        for what, seconds in (("poll_interval", poll_interval), ("request_timeout", request_timeout)):
            if not isinstance(seconds, (int, float)) or seconds <= 0:
                raise InvalidInput(f"Expected {what} to be a positive number of seconds. Received: {seconds!r}")
        self.refs = list(refs)
        self.store = os.fspath(store) if store is not None else None
        self.artifacts = artifacts
        self.host = host
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.poll_interval = float(poll_interval)
        self.request_timeout = float(request_timeout)
        self.max_body_bytes = int(max_body_bytes)
        self.drain_timeout = float(drain_timeout)
        self.opts = ServeOptions(max_batch_size=max_batch_size, max_queue_delay_us=max_queue_delay_us, instances=instances,
                                 max_queue=max_queue, provider=provider, runtime=tuple(sorted(runtime.items())),
                                 max_pixels=max_pixels)
        self.metrics = Metrics()
        self.models: dict[str, ServedModel] = {}
        self.ready = False
        self.registry: Any = None
        self._registry_thread = ThreadPoolExecutor(1, thread_name_prefix="zoo-serve-registry")
        self._decode_pool = ThreadPoolExecutor(2, thread_name_prefix="zoo-serve-decode")
        self._tasks: list[asyncio.Task] = []
        self._poke: asyncio.Event | None = None
        self._http: Any = None
        self._http_task: asyncio.Task | None = None
        self._grpc: Any = None
        self._stopped: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ registry calls, on their own thread

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._registry_thread, lambda: fn(*args, **kwargs))

    async def _load(self, ref: str) -> Loaded:
        version = await self._call(self.registry.resolve, ref)
        models = await self._call(load_version, self.registry, version, self.opts)
        loaded = Loaded(version, models, self.opts, self.metrics)
        loaded.batcher.start()
        return loaded

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the store, load, verify and warm every reference, then listen. Nothing listens before
        every model is ready, so a load balancer never sees a half-started server."""
        from .._open import open_registry

        self._loop = asyncio.get_running_loop()
        self._poke = asyncio.Event()
        self._stopped = asyncio.Event()
        self.registry = await self._call(open_registry, self.store, artifacts=self.artifacts)
        for ref in self.refs:
            loaded = await self._load(ref)
            served = ServedModel(ref, loaded, self.metrics)
            if served.name in self.models:
                raise InvalidInput(f"Expected one reference per model name (the protocol addresses models by name). "
                                   f"Received: {self.models[served.name].ref} and {ref}",
                                   hint="serve one reference per model; pin versions in clients with /versions/N")
            self.models[served.name] = served
            log.info("serving %s as %s (sha256 %s) on %s", ref, loaded.version.ref, loaded.version.sha256,
                     loaded.model.provider.name)
        if self.http_port is not None:
            await self._start_http()
        if self.grpc_port is not None:
            await self._start_grpc()
        if any(m.movable for m in self.models.values()):
            self._tasks.append(asyncio.ensure_future(self._poll()))
            from ..store.location import is_database_url

            if self.store is not None and is_database_url(self.store):
                self._tasks.append(asyncio.ensure_future(self._listen()))
        self.ready = True

    async def _start_http(self) -> None:
        import socket

        import uvicorn

        from ._http import App

        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit TCP_NODELAY (Linux): without it the response head and body are two
        # writes, and Nagle's algorithm against the client's delayed ACK adds ~40 ms to every request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, int(self.http_port or 0)))
        except OSError as exc:
            sock.close()
            raise Unavailable(f"Expected to listen on {self.host}:{self.http_port} (REST). Received: {exc.strerror}",
                              hint="choose another --http-port, or stop what is using it") from None
        sock.listen(2048)
        self.http_port = sock.getsockname()[1]
        config = uvicorn.Config(App(self), log_level="warning", access_log=False, lifespan="off",
                                timeout_keep_alive=15, timeout_graceful_shutdown=int(self.drain_timeout) or None)

        class _Uvicorn(uvicorn.Server):
            def capture_signals(self):  # zoo's own handler drains REST and gRPC together
                import contextlib

                return contextlib.nullcontext()

        self._http = _Uvicorn(config)
        self._http_task = asyncio.ensure_future(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise Unavailable("Expected the REST server to start. Received: it stopped")
            await asyncio.sleep(0.01)

    async def _start_grpc(self) -> None:
        from ._grpc import start_grpc

        self._grpc, self.grpc_port = await start_grpc(self, self.host, int(self.grpc_port or 0))

    async def stop(self) -> None:
        """Drain: stop accepting, finish the requests in flight, close the batchers."""
        self.ready = False
        if self._http is not None:
            self._http.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(self.drain_timeout)
        if self._http_task is not None:
            await self._http_task
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(m.current.retire() for m in self.models.values()), return_exceptions=True)
        self._registry_thread.shutdown(wait=False)
        self._decode_pool.shutdown(wait=False)
        if self._stopped is not None:
            self._stopped.set()

    def run(self, on_ready: Callable[[Server], None] | None = None) -> None:
        """Start, call ``on_ready(self)``, serve until SIGTERM or SIGINT, drain, return (the CLI then exits 0)."""

        async def main() -> None:
            await self.start()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            if on_ready is not None:
                on_ready(self)
            await stop.wait()
            log.info("draining (signal received)")
            await self.stop()

        asyncio.run(main())

    def start_in_thread(self, timeout: float = 120.0) -> Server:
        """Run the server on a background thread (tests, notebooks); returns once it listens. :meth:`close` stops it."""
        started = threading.Event()
        failure: list[BaseException] = []

        def body() -> None:
            async def main() -> None:
                try:
                    await self.start()
                except BaseException as exc:
                    failure.append(exc)
                    started.set()
                    return
                started.set()
                assert self._stopped is not None
                await self._stopped.wait()

            asyncio.run(main())

        self._thread = threading.Thread(target=body, name="zoo-serve", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise Unavailable(f"Expected the server to start within {timeout:g} s. Received: it did not")
        if failure:
            raise failure[0]
        return self

    def close(self) -> None:
        """Stop a server started with :meth:`start_in_thread` (drains first)."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(self.drain_timeout + 30)
            self._thread.join(30)

    def refresh_now(self) -> None:
        """Check every alias now instead of at the next poll (thread-safe)."""
        if self._loop is not None and self._poke is not None:
            self._loop.call_soon_threadsafe(self._poke.set)

    # ------------------------------------------------------------------ alias moves

    async def refresh(self) -> int:
        """Check every served alias once; the number of models that swapped."""
        swapped = 0
        for served in list(self.models.values()):
            if not served.movable:
                continue
            ref = served.ref
            try:
                swapped += await served.refresh(lambda: self._call(self.registry.resolve, ref),  # noqa: B023 (awaited here)
                                                lambda v: self._call(load_version, self.registry, v, self.opts), self.opts)
            except Exception as exc:  # the store is down for a moment: keep serving, try again next time
                log.warning("could not check %s for a move: %s", served.ref, message_of(exc))
        return swapped

    async def _poll(self) -> None:
        assert self._poke is not None
        while True:
            try:
                await asyncio.wait_for(self._poke.wait(), self.poll_interval)
            except TimeoutError:
                pass
            self._poke.clear()
            await self.refresh()

    async def _listen(self) -> None:
        """PostgreSQL ``LISTEN zoo_alias``: a NOTIFY on an alias move pokes the poller at once. Polling goes on
        regardless, so a store without the NOTIFY (or a dropped connection) only adds latency."""
        assert self._poke is not None
        try:
            import psycopg

            from ..store.location import parse_database
        except ImportError:
            return
        conninfo = parse_database(str(self.store)).conninfo
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    async for _ in conn.notifies():
                        self._poke.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN %s failed (%s); polling every %g s", NOTIFY_CHANNEL, exc, self.poll_interval)
                await asyncio.sleep(max(self.poll_interval, 1.0))

    # ------------------------------------------------------------------ the inference path

    def served(self, name: str) -> ServedModel:
        served = self.models.get(name)
        if served is None:
            raise NotFound(f"Expected one of the served models ({', '.join(sorted(self.models))}). Received: {name[:64]!r}",
                           hint="GET /v2/models/NAME for a served name; zoo serve REF... chooses what is served")
        return served

    async def infer(self, request: InferRequest, protocol: str) -> InferResponse:
        """Decode, queue, run, encode one request: the same on REST and gRPC."""
        if not self.ready:
            raise Unavailable("Expected a server that takes requests. Received: it is draining",
                              hint="retry on another replica")
        served = self.served(request.model)
        loaded = served.pick(request.version)
        labels = (served.name, str(loaded.version.version), protocol)
        started = time.perf_counter()
        loaded.acquire()
        try:
            self.metrics.requests.labels(*labels).inc()
            if any(isinstance(t.value, list) for t in request.inputs):  # images: decode off the event loop
                x = await asyncio.get_running_loop().run_in_executor(
                    self._decode_pool, model_input, loaded, request.inputs, self.opts.max_pixels)
            else:
                x = model_input(loaded, request.inputs, self.opts.max_pixels)
            future = loaded.batcher.submit(x)
            timer = asyncio.get_running_loop().call_later(self.request_timeout, future.cancel)  # no task per request
            try:
                rows = await future
            except asyncio.CancelledError:
                task = asyncio.current_task()
                cancelling = getattr(task, "cancelling", None)  # Python 3.11+; on 3.10 a cancel reads as a timeout
                if cancelling is not None and cancelling():  # the client went away: not a timeout
                    raise
                raise RequestTimeout(f"Expected an answer within {self.request_timeout:g} s. Received: none (queue depth "
                                     f"{loaded.batcher.depth})", hint="retry later; the server is overloaded") from None
            finally:
                timer.cancel()
            outputs = output_tensors(loaded, rows, request)
        except BaseException as exc:
            self.metrics.failures.labels(*labels, str(status_of(exc)[0])).inc()
            raise
        finally:
            loaded.release()
            self.metrics.request_seconds.labels(*labels).observe(time.perf_counter() - started)
        return InferResponse(served.name, loaded.version, outputs, request.id)

    def log_access(self, **fields: Any) -> None:
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(json.dumps(fields, separators=(",", ":"), default=str))

    def server_metadata(self) -> dict[str, Any]:
        from importlib import metadata

        from .._distribution import DISTRIBUTION

        try:
            version = metadata.version(DISTRIBUTION)
        except metadata.PackageNotFoundError:
            version = "0"
        return {"name": "zoo", "version": version, "extensions": list(EXTENSIONS)}


EXTENSIONS = ("binary_tensor_data", "classification", "model_version_header", "zoo_images", "zoo_alias_hot_swap")


def serve(refs: Sequence[str], **options: Any) -> None:
    """Serve ``refs`` until SIGTERM/SIGINT (see :class:`Server` for the options); blocks."""
    Server(refs, **options).run()


__all__ = ["EXTENSIONS", "Server", "serve", "status_of"]
