"""``python -m web [--host 127.0.0.1] [--port 5000] [--threads 16] [--workers 1]``: serve
the map. ``python -m web adduser NAME --role planner|viewer [--password P]``: create an
account.

The dataset is the bundled sample unless ``DATASET=path.gpkg`` or
``DATABASE_URL=postgresql://…`` says otherwise. Served by waitress, a multi-threaded
production WSGI server, so a page's many tile-like requests run side by side; with
``--workers N`` by N such processes on one port (Python runs one thread at a time, so one
process uses about one core).
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def adduser(argv) -> int:
    """``python -m web adduser NAME --role planner|viewer [--password P]``"""
    import getpass

    from layers.storage import open_store
    from web import default_dataset
    from web.auth import ROLES, add_user

    ap = argparse.ArgumentParser(prog="python -m web adduser")
    ap.add_argument("name")
    ap.add_argument("--role", choices=ROLES, required=True)
    ap.add_argument("--password", help="prompted for when omitted")
    args = ap.parse_args(argv)
    password = args.password or getpass.getpass(f"password for {args.name}: ")
    dataset = default_dataset()
    try:
        add_user(open_store(dataset), args.name, args.role, password)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.role} '{args.name}' saved in {dataset}")
    return 0


def few_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas before the server's threads start. glibc gives threads
    arenas of their own (up to 8 per core), and memory freed in one is not reused by the
    others: with 16 threads the resident size grew 11–14 % over 300 saves on the sample,
    with 2 arenas 2 %. The same as ``MALLOC_ARENA_MAX=2``; nothing on other C libraries."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return  # not glibc
    m_arena_max = -8  # <malloc.h>
    mallopt(m_arena_max, arenas)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["adduser"]:
        return adduser(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m web", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=16, help="per worker process")
    ap.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("GRIDMAP_WORKERS", "1")),
        help="processes serving together (one per core: Python runs one thread at a time)",
    )
    ap.add_argument("--socket-fd", type=int, help=argparse.SUPPRESS)  # a worker's socket
    args = ap.parse_args(argv)
    if args.workers > 1 and args.socket_fd is None:
        return supervise(args)
    return serve_here(args)


def serve_here(args) -> int:
    """Serve in this process: alone, or as one of ``args.workers`` on an inherited socket."""
    few_malloc_arenas()
    from waitress import serve

    from geo.redraw import warm
    from layers.errors import GridmapError
    from web import create_app, pages
    from web.catalog import follow

    try:
        app = create_app({"WORKERS": args.workers, "WARMED_FIRST": True})
    except (GridmapError, ValueError) as err:
        print("error: " + " ".join(line.strip() for line in str(err).splitlines()), file=sys.stderr)
        return 2
    # what others commit (other workers, the CLI) is shown within a few tenths of a second
    follow(app.extensions["gridmap"])
    # the grid's tiles and what every edit is planned on, then the edit previews' areal
    # interpolation and the map page's folium (imports: 2 s holding Python's lock), made
    # now rather than by the first map view, page and save, one after the other
    catalog = app.extensions["gridmap"]

    def warm_up():
        catalog.warm()
        warm()
        pages.warm()

    threading.Thread(target=warm_up, name="gridmap-warm", daemon=True).start()
    # what was loaded lives as long as the process: kept out of the garbage collector's
    # full passes, which otherwise stop every request for a third of a second now and then
    gc.collect()
    gc.freeze()
    options = server_options(app, args.threads)
    where = app.extensions["gridmap"].location
    if args.socket_fd is not None:
        print(f"gridmap: worker {os.getpid()} serving {where}", flush=True)
        serve(app, sockets=[socket.socket(fileno=args.socket_fd)], **options)
    else:
        print(f"gridmap: serving {where} on http://{args.host}:{args.port}/", flush=True)
        serve(app, host=args.host, port=args.port, **options)
    return 0


def supervise(args) -> int:
    """Serve with ``args.workers`` processes sharing one listening socket (the kernel
    hands each connection to one of them). Each holds its own copy of the dataset and
    shows the others' saves within a few tenths of a second (``Catalog.keep_up``); a
    worker that dies is started again; SIGTERM or Ctrl-C stops them all."""
    from pathlib import Path

    from flask import Flask

    from web.auth import secret_key

    listener = socket.create_server((args.host, args.port), backlog=1024)
    listener.set_inheritable(True)
    secret_key(Path(Flask("web").instance_path))  # made once here: the workers share it
    command = [
        sys.executable, "-m", "web", "--socket-fd", str(listener.fileno()),
        "--threads", str(args.threads), "--workers", str(args.workers),
    ]  # fmt: skip

    def start():
        return subprocess.Popen(command, pass_fds=[listener.fileno()])

    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    workers = [start() for _ in range(args.workers)]
    print(
        f"gridmap: {args.workers} worker processes on http://{args.host}:{args.port}/",
        flush=True,
    )
    try:
        while not stopping:
            time.sleep(0.5)
            for k, worker in enumerate(workers):
                code = worker.poll()
                if code is None or stopping:  # Ctrl-C reaches the workers too
                    continue
                if code == 2:  # the dataset is unusable: say so once, not again and again
                    stopping.append(True)
                    return 2
                print(f"gridmap: worker {worker.pid} ended ({code}); starting another", flush=True)
                workers[k] = start()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
    return 0


def server_options(app, threads: int) -> dict:
    """waitress's settings for serving ``app`` with ``threads`` threads."""
    options = {
        "threads": threads,
        "ident": "gridmap",
        # read one request ahead on each connection, so that waitress notices a client
        # that has closed it and an expensive analysis for it can stop (web/heavy.py)
        "channel_request_lookahead": 1,
    }
    # waitress refuses, before reading it, a body far over the app's limit (the app answers
    # the JSON 413 for bodies up to four times the limit: most clients see that one)
    if app.config["MAX_CONTENT_LENGTH"]:
        options["max_request_body_size"] = 4 * app.config["MAX_CONTENT_LENGTH"]
    return options


if __name__ == "__main__":
    sys.exit(main())
