"""A real OpenID provider on loopback for the single sign-on tests: oidc-provider (npm) running tests/sso/provider.mjs.

The provider reads its directory (tests/sso/provider.mjs says the format) from a JSON file at each sign-in, so a
test changes someone's groups with `provider.set_groups("pat", [...])` between two sign-ins. `sign_in` drives the
provider's own sign-in and consent pages over HTTP, as a browser would, for tests without a browser.
"""

from __future__ import annotations

import dataclasses
import http.cookiejar
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.settings import REPO_ROOT, Settings, _sso_groups
from tests.smtp import free_port

PROVIDER_SCRIPT = Path(__file__).with_name("provider.mjs")
CLIENT_ID = "civicflow-tests"
CLIENT_SECRET = "a client secret for the tests only"
STARTUP_SECONDS = 20.0
# The directory's people: their subject (`sub`, also what they type at the provider's sign-in page) and claims.
ACCOUNTS = {
    "pat-0001": {
        "preferred_username": "Pat.Quinn@wspmn.example",
        "name": "Pat Quinn",
        "email": "pat.quinn@wspmn.example",
        "groups": ["parks-heads"],
    },
    "lee-0002": {
        "preferred_username": "lee@wspmn.example",
        "name": "Lee Nogroup",
        "email": "lee@wspmn.example",
        "groups": ["a-group-civicflow-does-not-map"],
    },
}
# What the groups give in civicflow, in CIVICFLOW_SSO_GROUPS's syntax.
GROUPS = (
    "civicflow-admins=admin, parks-staff=department:parks, parks-heads=department:parks, parks-heads=head:parks, "
    "comms=communications_manager, comms=department:communications"
)
# What a tampered ID token claims (tests/sso/provider.mjs).
TAMPERED_GROUPS = ["civicflow-admins"]


@dataclasses.dataclass
class LocalProvider:
    """The running provider: its issuer, and its directory file (changed between sign-ins by the tests)."""

    issuer: str
    directory_path: Path

    def directory(self) -> dict:
        """The directory as the provider reads it now."""
        return json.loads(self.directory_path.read_text())

    def write(self, directory: dict) -> None:
        """Replace the directory; the provider reads it at the next sign-in."""
        self.directory_path.write_text(json.dumps(directory))

    def set_groups(self, sub: str, groups: list[str]) -> None:
        """Change a person's groups in the directory, as IT would."""
        directory = self.directory()
        directory["accounts"][sub]["groups"] = groups
        self.write(directory)

    def tamper_id_tokens(self, tamper: bool = True) -> None:
        """Make the token endpoint answer with ID tokens changed after they were signed."""
        directory = self.directory()
        directory["tamper_id_token"] = tamper
        self.write(directory)

    def settings_for(self, settings: Settings, **changes) -> Settings:
        """The app's settings with single sign-on through this provider."""
        sso = {
            "sso_issuer": self.issuer,
            "sso_client_id": CLIENT_ID,
            "sso_client_secret": CLIENT_SECRET,
            "sso_provider_name": "City Directory",
            "sso_scopes": "openid profile email groups",
            "sso_groups": _sso_groups("CIVICFLOW_SSO_GROUPS", GROUPS),
        }
        return dataclasses.replace(settings, **{**sso, **changes})


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the OpenID provider stopped: {process.stderr.read() if process.stderr else ''}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the OpenID provider did not listen on port {port} within {STARTUP_SECONDS:g} s")


@contextmanager
def running_provider(folder: Path, redirect_uri: str, port: int | None = None) -> Iterator[LocalProvider]:
    """oidc-provider on http://127.0.0.1:<port> with the test client and ACCOUNTS, stopped afterwards."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the single sign-on tests (it is a requirement of the project)"
    port = port or free_port()
    provider = LocalProvider(f"http://127.0.0.1:{port}", folder / "directory.json")
    provider.write(
        {
            "client": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri]},
            "accounts": ACCOUNTS,
            "tamper_id_token": False,
        }
    )
    process = subprocess.Popen(
        [node, str(PROVIDER_SCRIPT), str(port), str(provider.directory_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_port(port, process)
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


class _Arrived(Exception):
    """The provider sent the browser back to civicflow: the URL it was sent to."""

    def __init__(self, url: str):
        self.url = url


_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post">.*?name="prompt" value="(\w+)"', re.S)


def sign_in(authorization_url: str, sub: str, issuer: str, opener=None) -> str:
    """Sign in at the provider's own pages (login, then consent) as the person `sub`; the URL it sends them back to.

    `opener` keeps the provider's cookies between sign-ins (one browser); a new one is a new browser.
    """

    class StopAtCivicflow(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            if not newurl.startswith(issuer):
                raise _Arrived(newurl)
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = opener or urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), StopAtCivicflow()
    )
    try:
        page = opener.open(authorization_url, timeout=10).read().decode()
        for _step in range(4):
            action, prompt = _FORM.search(page).groups()
            fields = {"prompt": prompt, "login": sub, "password": "any password"} if prompt == "login" else {}
            fields["prompt"] = prompt
            data = urllib.parse.urlencode(fields).encode()
            page = opener.open(urllib.parse.urljoin(issuer, action), data=data, timeout=10).read().decode()
    except _Arrived as arrived:
        return arrived.url
    raise AssertionError(f"the provider did not send the person back; its last page: {page[:500]}")
