"""``vmatte ui``: start the web app on this machine.

Gradio is imported only here, after its cache folder is pointed into the app's working
directory: uploads, results and everything the page can fetch then live under that one folder,
and ``allowed_paths`` names nothing else.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import VmatteError
from ..io.writers import prepare_output_dir
from .session import UiSettings

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 7860
    workdir: Path | None = None  # None: a new temporary folder, removed on exit
    max_upload_mb: int = 500
    device: str = "auto"
    segmenter: str = "auto"  # what clicks use at first (the page can change it per session)


def check_host(host: str) -> None:
    """Warn when the app is reachable from other machines (it has no login)."""
    if host not in LOCAL_HOSTS:
        warnings.warn(
            f"--host {host}: the app is reachable from other machines on the network and has no "
            f"login; anyone who can reach port it listens on can upload videos and run jobs",
            stacklevel=2,
        )


def check_address(host: str, port: int) -> None:
    """Bind ``host:port`` once, now, so an unknown host or a port in use is one line, before
    Gradio starts (its own failure is a traceback after the page was built)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError):
        raise VmatteError(
            f"--host {host!r} is not an address of this machine; give an IP address or name such "
            f"as 127.0.0.1 (this machine only) or 0.0.0.0 (the network)"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise VmatteError(
                    f"port {port} on {host} is in use (another app, or vmatte ui already running); give another --port"
                ) from None
            if e.errno in (errno.EACCES, errno.EPERM):
                raise VmatteError(f"no permission to listen on port {port}; give a --port above 1023") from None
            raise VmatteError(
                f"cannot listen on {host}:{port}: {e.strerror or e}; give another --host or --port"
            ) from None


def prepare_workdir(workdir: Path | None) -> Path:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="vmatte-ui-")).resolve()
    path = Path(workdir).expanduser().resolve()
    prepare_output_dir(path, "working folder", "--workdir")
    return path


def serve(options: ServeOptions) -> None:
    """Build the page and serve it until Ctrl-C."""
    if not 0 < options.port < 65536:
        raise VmatteError(f"--port must be 1..65535, got {options.port}")
    if options.max_upload_mb < 1:
        raise VmatteError(f"--max-upload-mb must be at least 1, got {options.max_upload_mb}")
    check_address(options.host, options.port)
    check_host(options.host)
    from ..engine.segment.prompts import check_segmenter

    check_segmenter(options.segmenter)
    workdir = prepare_workdir(options.workdir)
    cache = workdir / "gradio"
    cache.mkdir(exist_ok=True)
    # Before gradio is imported: its upload/cache folder, and no calls home (the app is offline).
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise VmatteError("the web app needs Gradio: pip install 'vmatte[ui]'") from None
    from .app import CSS, build_app

    settings = UiSettings(
        workdir=workdir, max_upload_mb=options.max_upload_mb, device=options.device, segmenter=options.segmenter
    )
    page = build_app(settings)
    print(f"vmatte ui: working folder {workdir}", file=sys.stderr)
    try:
        page.queue(default_concurrency_limit=1).launch(
            server_name=options.host,
            server_port=options.port,
            share=False,
            inbrowser=False,
            show_error=True,
            max_file_size=f"{options.max_upload_mb}mb",
            allowed_paths=[str(workdir)],
            css=CSS,
            footer_links=[],
            quiet=False,
        )
    finally:
        if options.workdir is None:  # our own temporary folder: the user never saw its files
            shutil.rmtree(workdir, ignore_errors=True)
