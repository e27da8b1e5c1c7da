"""Single sign-on with OpenID Connect: /login/sso sends the person to the City's provider, the callback signs them in.

The authorization code flow with PKCE, state and nonce. The code is exchanged at the provider's token endpoint with
the client secret, and Authlib verifies the ID token (signature against the provider's published keys, issuer,
audience, expiry, nonce, at_hash). engine/people/sso.py turns the verified claims into the person and what their
groups give them; the sign-in then goes on exactly as a password login does (web/auth.py's SessionUser).
Anything wrong (a stale or forged state, a refused code, a token that does not verify) is a clear page, never a 500.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client.sync_openid import OpenIDMixin
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user
from joserfc.errors import JoseError

from engine.db.connection import begin_write
from engine.errors import Invalid, NotAuthenticated
from engine.people import sso as directory
from engine.settings import Settings
from forms.auth import LoginForm
from web.auth import SessionUser, _safe_next
from web.db import get_session, transactional

sso = Blueprint("sso", __name__)
log = logging.getLogger("civicflow.sso")
# How long civicflow waits for the provider (discovery, keys, token) before telling the person it is unreachable.
PROVIDER_TIMEOUT_SECONDS = 10
PENDING = "civicflow_sso"


class ProviderUnreachable(Exception):
    """The provider did not answer, or answered with something that is not its metadata or keys."""


class CodeRefused(Exception):
    """The provider's token endpoint refused the sign-in code."""


def _fetch_json(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON answer of the provider at a URL (a POST with data); only http(s), never file: or others."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise ProviderUnreachable(f"{url}: not an http(s) address")
    call = urllib.request.Request(url, data=data, headers={"Accept": "application/json", **(headers or {})})  # noqa: S310
    try:
        with urllib.request.urlopen(call, timeout=PROVIDER_TIMEOUT_SECONDS) as response:  # noqa: S310 (checked above)
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if call.data is not None:
            raise CodeRefused(exc.read(500).decode(errors="replace")) from exc
        raise ProviderUnreachable(f"{call.full_url}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise ProviderUnreachable(f"{call.full_url}: {exc}") from exc


class Provider(OpenIDMixin):
    """The City's OpenID provider as Authlib's ID token check needs it: its metadata, keys and our client id."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client_id = settings.sso_client_id
        self.server_metadata: dict[str, Any] = {}

    def load_server_metadata(self) -> dict[str, Any]:
        """The provider's discovery document, fetched once per process."""
        if not self.server_metadata:
            metadata = _fetch_json(f"{self.settings.sso_issuer}/.well-known/openid-configuration")
            if metadata.get("issuer") != self.settings.sso_issuer or "token_endpoint" not in metadata:
                raise ProviderUnreachable(f"the discovery document is not the issuer's: {metadata.get('issuer')}")
            self.server_metadata = metadata
        return self.server_metadata

    def fetch_jwk_set(self, force: bool = False) -> dict[str, Any]:
        """The provider's signing keys, fetched again when a token names a key not seen yet (key rollover)."""
        metadata = self.load_server_metadata()
        if force or "jwks" not in metadata:
            metadata["jwks"] = _fetch_json(metadata["jwks_uri"])
        return metadata["jwks"]

    def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """The tokens for a sign-in code (client_secret_basic, with the PKCE verifier)."""
        form = urllib.parse.urlencode(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
        ).encode()
        pair = f"{urllib.parse.quote(self.client_id or '', safe='')}:"
        pair += urllib.parse.quote(self.settings.sso_client_secret or "", safe="")
        headers = {
            "Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        endpoint = self.load_server_metadata()["token_endpoint"]
        return _fetch_json(endpoint, form, headers)


def _settings() -> Settings:
    return current_app.extensions["civicflow.settings"]


def _provider() -> Provider:
    """This app's provider (its metadata and keys are kept between requests)."""
    if "civicflow.sso" not in current_app.extensions:
        current_app.extensions["civicflow.sso"] = Provider(_settings())
    return current_app.extensions["civicflow.sso"]


def _refused(message: str, status: int = 400):
    """The login page with what went wrong and the way to start again."""
    flash(message, "error")
    return render_template("auth/login.html", form=LoginForm()), status


def _unreachable(exc: Exception):
    log.warning("single sign-on provider unreachable: %s", exc)
    name = _settings().sso_provider_name
    return _refused(f"{name} could not be reached, so you are not signed in. Try again in a minute, or ask IT.", 502)


@sso.get("/login/sso")
def start():
    """Send the person to the provider's sign-in page, with a fresh state, nonce and PKCE verifier."""
    settings = _settings()
    if not settings.sso_enabled:
        abort(404)
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    try:
        metadata = _provider().load_server_metadata()
    except ProviderUnreachable as exc:
        return _unreachable(exc)
    pending = {
        "state": generate_token(32),
        "nonce": generate_token(32),
        "verifier": generate_token(64),
        "next": _safe_next(request.args.get("next")),
    }
    session[PENDING] = pending
    params = {
        "response_type": "code",
        "client_id": settings.sso_client_id,
        "redirect_uri": url_for("sso.callback", _external=True),
        "scope": settings.sso_scopes,
        "state": pending["state"],
        "nonce": pending["nonce"],
        "code_challenge": create_s256_code_challenge(pending["verifier"]),
        "code_challenge_method": "S256",
    }
    return redirect(add_params_to_uri(metadata["authorization_endpoint"], params))


START_AGAIN = "This sign-in was not started here, or was finished already: start again with the button below."


@sso.get("/login/sso/callback")
@transactional
def callback():
    """Back from the provider: check the state, exchange the code, verify the ID token, sign the person in."""
    settings = _settings()
    if not settings.sso_enabled:
        abort(404)
    pending = session.pop(PENDING, None)
    state = request.args.get("state", "")
    if not pending or not secrets.compare_digest(state.encode(), pending["state"].encode()):
        return _refused(START_AGAIN)
    if request.args.get("error"):
        if request.args["error"] == "access_denied":
            return _refused("The sign-in was cancelled at the sign-in service; you are not signed in.")
        return _refused(f"{settings.sso_provider_name} did not sign you in ({request.args['error'][:100]}).")
    # RFC 9207: an answer from another provider than the one this sign-in went to (a mix-up attack).
    if request.args.get("iss", settings.sso_issuer) != settings.sso_issuer or not request.args.get("code"):
        return _refused(START_AGAIN)
    claims = _verified_claims(settings, request.args["code"], pending)
    if not isinstance(claims, dict):
        return claims  # the page saying why not
    db = get_session()
    begin_write(db)
    try:
        user = directory.sign_in(db, settings, claims)
    except Invalid as exc:
        return _refused(" ".join(message for messages in exc.fields.values() for message in messages), 403)
    except NotAuthenticated as exc:
        return _refused(exc.message, 403)
    login_user(SessionUser(user))
    flash(f"Welcome, {user.display_name}.", "success")
    return redirect(pending["next"])


NOT_VERIFIED = "The sign-in could not be verified, so you are not signed in: start again with the button below."


def _verified_claims(settings: Settings, code: str, pending: dict[str, str]):
    """The claims of the ID token the code is exchanged for, verified by Authlib; or the page saying why not."""
    provider = _provider()
    try:
        tokens = provider.exchange(code, url_for("sso.callback", _external=True), pending["verifier"])
        claims = provider.parse_id_token(tokens, nonce=pending["nonce"])
    except ProviderUnreachable as exc:
        return _unreachable(exc)
    except CodeRefused as exc:
        log.warning("single sign-on code refused: %s", exc)
        return _refused(f"{settings.sso_provider_name} refused the sign-in: start again with the button below.")
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        log.warning("single sign-on ID token refused: %r", exc)
        return _refused(NOT_VERIFIED)
    if claims is None:  # no ID token in the answer
        return _refused(NOT_VERIFIED)
    return dict(claims)


@sso.app_context_processor
def sign_in_button() -> dict[str, str | None]:
    """The provider's name for the login page's "Sign in with ..." button; none when single sign-on is off."""
    settings = _settings()
    return {"sso_name": settings.sso_provider_name if settings.sso_enabled else None}
