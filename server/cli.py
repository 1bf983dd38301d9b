"""`li2 serve`: one uvicorn process running create_app(); flags override LI2_* variables."""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import sys

from .settings import Settings, SettingsError
from .store.sqlite import StoreUnreadable, check_readable


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="li2 serve", description="Serve the li2lab web laboratory (API, websocket, pages).",
        epilog="Every flag has an environment variable: LI2_HOST, LI2_PORT, LI2_DATA_DIR, "
               "LI2_DATABASE_URL, LI2_RUNNER, LI2_RAY_ADDRESS, LI2_MAX_JOBS, LI2_QUOTA, "
               "LI2_INSTRUCTOR_TOKEN, LI2_WALL_TIME_LIMIT, "
               "LI2_ALLOWED_ORIGINS, ... (see server/settings.py).")
    p.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 8000)")
    p.add_argument("--data-dir", help="folder of the SQLite run store (default ./data)")
    p.add_argument("--database", metavar="URL",
                   help="run store: sqlite:///path or postgresql://user@host:port/db "
                        "(default: runs.sqlite in the data dir)")
    p.add_argument("--runner", choices=["local", "ray"],
                   help="where jobs train: local worker processes (default) or Ray")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --runner ray: auto or ray://host:port joins a cluster; "
                        "none starts a local Ray")
    p.add_argument("--max-jobs", type=int,
                   help="jobs training at once (default: the runner's CPUs)")
    p.add_argument("--quota", type=int, help="active runs per client (default 2)")
    p.add_argument("--instructor-token",
                   help="require this token (X-Instructor-Token) to create/cancel/delete runs; "
                        "prefer LI2_INSTRUCTOR_TOKEN, flags show up in process lists")
    p.add_argument("--wall-time-limit", type=float, help="seconds a run may take (default 3600)")
    p.add_argument("--allowed-origins",
                   help="comma-separated extra origins allowed on the websocket")
    p.add_argument("--public-url",
                   help="address students reach this server at (classroom links and QR codes), "
                        "e.g. http://10.0.0.5:8000")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    return p


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(argv: list[str]) -> int:
    """Parse ``argv`` (the words after `serve`), build the settings and run until stopped."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help or a bad flag: argparse already printed why
        return int(exc.code or 0)
    try:
        settings = Settings.load(
            host=args.host, port=args.port, data_dir=args.data_dir,
            database_url=args.database, runner=args.runner, ray_address=args.ray_address,
            max_jobs=args.max_jobs,
            quota=args.quota, instructor_token=args.instructor_token,
            wall_time_limit=args.wall_time_limit, allowed_origins=args.allowed_origins,
            public_url=args.public_url)
    except SettingsError as exc:
        print(f"li2 serve: {exc}", file=sys.stderr)
        return 2
    if settings.runner == "ray" and importlib.util.find_spec("ray") is None:
        print("li2 serve: --runner ray needs Ray: pip install 'li2lab[cluster]'", file=sys.stderr)
        return 2
    if settings.store == "postgresql" and importlib.util.find_spec("psycopg") is None:
        print("li2 serve: a postgresql:// database needs psycopg: pip install 'li2lab[cluster]'",
              file=sys.stderr)
        return 2
    if not _is_loopback(settings.host) and settings.instructor_token is None:
        print(f"li2 serve: warning: listening on {settings.host} without an instructor token; "
              "anyone who can reach this port can start runs (quota "
              f"{settings.quota} per client)", file=sys.stderr)

    if settings.store == "sqlite":
        try:  # one line naming the file, not a traceback from inside the server's start-up
            check_readable(settings.database_path)
        except StoreUnreadable as exc:
            print(f"li2 serve: {exc}", file=sys.stderr)
            return 2

    import uvicorn

    from .app import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, workers=1,
                log_level=args.log_level,
                # each viewer would deflate every frame separately: encode-once needs it off
                ws_per_message_deflate=False)
    return 0
