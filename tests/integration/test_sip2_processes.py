"""`biblioverse sip2 serve --processes 2`: two server processes share the port, the
kernel spreads the kiosks' connections over both, a copy is lent once however the race
falls, and one signal stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biblioverse.circulation.models import Loan
from tests import factories
from tests.integration.sip2_support import (
    KIOSK_LOGIN,
    KIOSK_PASSWORD,
    Wire,
    kiosk_account,
    race_to_borrow,
)
from tests.serving import BIN, free_port

LOGIN = f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|CPentrance|\r".encode()
CONNECTIONS = 16  # all on one process by chance: 2 in 65,536


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


ESTABLISHED, LISTEN = "01", "0A"  # states in /proc/net/tcp


def _sockets_on(pid: int, port: int, state: str) -> int:
    """Sockets on local ``port`` in ``state`` that process ``pid`` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        local_port = int(cols[1].rsplit(":", 1)[1], 16)
        if local_port == port and cols[3] == state and cols[9] in inodes:
            n += 1
    return n


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> list[int]:
    """The server processes, once every one of them listens (the kernel only spreads
    connections over the sockets already listening)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        servers = _children(proc.pid)
        if len(servers) == 2 and all(_sockets_on(pid, port, LISTEN) for pid in servers):
            return servers
        time.sleep(0.2)
    raise AssertionError(f"the servers did not all listen:\n{log.read_text()}")


def test_two_processes_share_the_port_lend_once_and_stop_together(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    factories.copies(session, w, "A Book", ["MP-1"])
    kiosk_account(session, w)
    cards = [factories.reader(session, w.central, 40 + n).card_number for n in range(CONNECTIONS)]
    session.commit()
    session.rollback()

    port = free_port()
    log = tmp_path / "sip2.log"
    env = {
        **os.environ,
        "BIBLIOVERSE_DATA_DIR": str(tmp_path),
        "BIBLIOVERSE_DATABASE_URL": database_url,
    }
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(BIN), "sip2", "serve", "--port", str(port), "--processes", "2"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        servers = _wait_listening(port, proc, log)
        wires = [Wire(port, timeout=30) for _ in cards]
        for wire in wires:
            assert wire.ask(LOGIN) == b"941\r"
        # Both processes hold some of the kiosks' connections.
        assert all(_sockets_on(pid, port, ESTABLISHED) > 0 for pid in servers)
        assert sum(_sockets_on(pid, port, ESTABLISHED) for pid in servers) == CONNECTIONS

        race_to_borrow(wires, cards, "MP-1")
        for wire in wires:
            wire.close()

        # A service manager's SIGTERM to the parent stops every server process.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
        assert not [pid for pid in servers if Path(f"/proc/{pid}").exists()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert session.scalar(select(func.count()).select_from(Loan)) == 1


def test_several_processes_need_a_fixed_port(tmp_path: Path) -> None:
    env = {**os.environ, "BIBLIOVERSE_DATA_DIR": str(tmp_path)}
    r = subprocess.run(
        [str(BIN), "sip2", "serve", "--port", "0", "--processes", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "fixed --port" in r.stderr
