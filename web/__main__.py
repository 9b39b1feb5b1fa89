"""``python -m web [--host 127.0.0.1] [--port 5000] [--threads 16]``: serve the map.
``python -m web adduser NAME --role planner|viewer [--password P]``: create an account.

The dataset is the bundled sample unless ``DATASET=path.gpkg`` or
``DATABASE_URL=postgresql://…`` says otherwise. Served by waitress, a multi-threaded
production WSGI server, so a page's many tile-like requests run side by side.
"""

from __future__ import annotations

import argparse
import gc
import sys


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
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args(argv)

    few_malloc_arenas()
    from waitress import serve

    from layers.errors import GridmapError
    from web import create_app

    try:
        app = create_app()
    except (GridmapError, ValueError) as err:
        print("error: " + " ".join(line.strip() for line in str(err).splitlines()), file=sys.stderr)
        return 2
    # what was loaded lives as long as the process: kept out of the garbage collector's
    # full passes, which otherwise stop every request for a third of a second now and then
    gc.collect()
    gc.freeze()
    print(
        f"gridmap: serving {app.extensions['gridmap'].location} on http://{args.host}:{args.port}/",
        flush=True,
    )
    serve(app, host=args.host, port=args.port, **server_options(app, args.threads))
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
