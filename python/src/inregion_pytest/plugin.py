"""The pytest plugin: one `inregion serve` per run, a fresh account per test.

With pytest-xdist the controller process starts the server and hands its address to
every worker (``pytest_configure_node``), so all workers share one server and tests stay
apart through their own accounts. Without xdist the server starts when a test first
asks for it. ``INREGION_URL`` (+ ``INREGION_ADMIN_TOKEN``) points the fixtures at a
server started elsewhere instead.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sysconfig
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional

import pytest

DEV_ACCOUNT_ID = "023e105f4ecef8ad9ca31a8372d0c353"


class InregionError(RuntimeError):
    """The server could not start, or an admin call failed."""


@dataclass
class Account:
    """A per-test account: both entitlements, a token, an approved prefix."""

    account_id: str
    token: str
    token_id: str
    prefix_id: str
    cidr: str

    def subnet(self, length: int, index: int = 0) -> str:
        """The ``index``-th subnet of length ``length`` of the account's prefix."""
        net = ipaddress.ip_network(self.cidr)
        step = 1 << (net.max_prefixlen - length)
        return str(ipaddress.ip_network(f"{net.network_address + index * step}/{length}"))


class Inregion:
    """A running server: its URLs, tokens and admin calls."""

    def __init__(self, base_url: str, admin_token: str, dev_token: Optional[str] = None):
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.dev_token = dev_token
        self.dev_account_id = DEV_ACCOUNT_ID

    @property
    def api_base(self) -> str:
        """The Cloudflare SDKs' ``base_url``."""
        return f"{self.base_url}/client/v4"

    def admin(self, method: str, path: str, body: Any = None, raw: Optional[str] = None) -> Any:
        """Calls ``/__inregion{path}`` and returns ``result`` (raises on an error)."""
        data = raw.encode() if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(
            f"{self.base_url}/__inregion{path}",
            data=data,
            method=method,
            headers={"X-Inregion-Admin-Token": self.admin_token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.load(resp).get("result")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            raise InregionError(f"{method} /__inregion{path}: HTTP {e.code}: {detail}") from None

    def reset(self) -> None:
        """Back to the start state (dev world, ``--config``), in one step."""
        self.admin("POST", "/reset")

    def create_account(self, **kwargs: Any) -> Account:
        """A fresh account (``name``, ``permissions``, ``cidr``, ``family`` optional)."""
        r = self.admin("POST", "/accounts", kwargs)
        return Account(r["account_id"], r["token"], r["token_id"], r["prefix_id"], r["cidr"])

    def add_fault(self, **rule: Any) -> str:
        """Adds a fault injection rule (see the server's docs); returns its id."""
        return self.admin("POST", "/faults", rule)["id"]

    def remove_fault(self, fault_id: str) -> None:
        """Removes a fault rule."""
        self.admin("DELETE", f"/faults/{fault_id}")

    def faults(self) -> list:
        """The fault rules with their counters."""
        return self.admin("GET", "/faults")

    def snapshot(self) -> str:
        """The server's records and clock as a snapshot file's text."""
        return json.dumps(self.admin("GET", "/snapshot"))

    def restore(self, snapshot: str) -> None:
        """Replaces every record with a snapshot's (text of a snapshot file)."""
        self.admin("POST", "/snapshot", raw=snapshot)

    def advance_clock(self, seconds: float) -> None:
        """Moves the server's clock forward (bindings activate as time passes)."""
        self.admin("POST", "/clock/advance", {"seconds": seconds})

    def client(self, token: str, **kwargs: Any):
        """An official ``cloudflare.Cloudflare`` client on this server."""
        import cloudflare  # optional dependency: pip install pytest-inregion[sdk]

        return cloudflare.Cloudflare(api_token=token, base_url=self.api_base, **kwargs)


def _default_binary() -> str:
    # The wheel installs `inregion` into the environment's scripts directory.
    candidate = os.path.join(sysconfig.get_path("scripts"), "inregion")
    if os.path.exists(candidate):
        return candidate
    found = shutil.which("inregion")
    if found:
        return found
    raise InregionError("the inregion binary was not found; pass --inregion-bin PATH")


class _Process:
    """A server started by this plugin."""

    def __init__(self, binary: str, propagation_delay: str):
        self.admin_token = secrets.token_hex(20)
        self.dev_token = "dev_" + secrets.token_hex(20)
        self.proc = subprocess.Popen(
            [
                binary, "serve", "--listen", "127.0.0.1:0", "--in-memory", "--admin",
                "--admin-token", self.admin_token, "--dev-token", self.dev_token,
                "--propagation-delay", propagation_delay, "--log-format", "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        first = self.proc.stdout.readline() if self.proc.stdout else ""
        prefix = "inregion: listening on "
        if not first.startswith(prefix):
            self.proc.kill()
            raise InregionError(f"inregion serve did not start (printed {first!r})")
        self.base_url = first[len(prefix):].strip()
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: self.proc.stdout.read(), daemon=True).start()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("inregion")
    group.addoption("--inregion-bin", default=None, help="the inregion binary (default: the packaged one)")
    group.addoption(
        "--inregion-propagation-delay",
        default="2s",
        help="how long a binding change takes to become active (default 2s)",
    )


class _State:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.process: Optional[_Process] = None
        self.server: Optional[Inregion] = None
        self.lock = threading.Lock()

    def get(self) -> Inregion:
        with self.lock:
            if self.server is None:
                self.start()
            assert self.server is not None
            return self.server

    def start(self) -> None:
        url = os.environ.get("INREGION_URL")
        if url:
            self.server = Inregion(url, os.environ.get("INREGION_ADMIN_TOKEN", ""))
            return
        binary = self.config.getoption("inregion_bin") or _default_binary()
        self.process = _Process(binary, self.config.getoption("inregion_propagation_delay"))
        self.server = Inregion(self.process.base_url, self.process.admin_token, self.process.dev_token)


_KEY = pytest.StashKey[_State]()


def pytest_configure(config: pytest.Config) -> None:
    state = _State(config)
    config.stash[_KEY] = state
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "inregion_url" in workerinput:
        # An xdist worker: the controller's server.
        state.server = Inregion(
            workerinput["inregion_url"], workerinput["inregion_admin_token"], workerinput["inregion_dev_token"]
        )
    elif workerinput is None and config.pluginmanager.hasplugin("xdist") and _xdist_workers(config):
        # The xdist controller: start now, so that every worker gets the address.
        state.get()


def _xdist_workers(config: pytest.Config) -> bool:
    n = getattr(config.option, "numprocesses", None)
    return bool(n) and n != 0


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: hand the controller's server to a worker."""
    server = node.config.stash[_KEY].get()
    node.workerinput["inregion_url"] = server.base_url
    node.workerinput["inregion_admin_token"] = server.admin_token
    node.workerinput["inregion_dev_token"] = server.dev_token


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_KEY, None)
    if state is not None and state.process is not None:
        state.process.stop()


@pytest.fixture(scope="session")
def inregion(pytestconfig: pytest.Config) -> Inregion:
    """The server of this run (shared by xdist workers)."""
    return pytestconfig.stash[_KEY].get()


@pytest.fixture
def inregion_account(inregion: Inregion) -> Account:
    """A fresh account for this test: its own token and prefix."""
    return inregion.create_account()


@pytest.fixture
def cloudflare_client(inregion: Inregion, inregion_account: Account):
    """``cloudflare_client(token=None, **kwargs)``: an official SDK client for the test's
    account (or for ``token``)."""

    def make(token: Optional[str] = None, **kwargs: Any):
        return inregion.client(token or inregion_account.token, **kwargs)

    return make
