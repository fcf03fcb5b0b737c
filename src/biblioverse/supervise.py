"""What ``biblioverse serve`` becomes once it has read its options: uvicorn's supervisor of
the web workers, and nothing else. The command line itself (typer, rich, the settings'
pydantic) is 17 MB that a process which only starts and watches workers never uses, so
``serve`` replaces itself with this module (same process id, so signals and process
managers see no difference)."""

from __future__ import annotations

import copy
import sys


def run(host: str, port: int, workers: int) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["biblioverse"] = {"handlers": ["default"], "level": "INFO"}
    uvicorn.run(
        "biblioverse.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # the app believes forwarded headers only from its configured proxies (app.py)
        proxy_headers=False,
        # uvicorn's access log prints raw paths, which can carry card numbers; the app
        # logs each request by its route template instead.
        access_log=False,
        log_config=log_config,
        log_level="info",
    )


def main(argv: list[str] | None = None) -> None:
    host, port, workers = argv if argv is not None else sys.argv[1:]
    run(host, int(port), int(workers))


if __name__ == "__main__":
    main()
