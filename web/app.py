"""The Flask application factory and the headers every response carries."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask, Response, render_template
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config
from storage import Store
from storage.accounts import Accounts
from storage.queue import ReviewQueue

from . import ack, actions, auth, filters, model_page, problems, report, sources, views
from .state import EXTENSION, WebState

# No script runs on any page, so none is allowed, and styles come from the
# site's own stylesheet only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Forms of the page are small; a larger request body gets 413.
MAX_REQUEST_BYTES = 256 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(
    config: Config, store: Store, *, now: Callable[[], datetime] | None = None
) -> Flask:
    """Build the review page over a migrated store.

    ``now`` returns the current time as an aware datetime; tests pass a clock
    they can move.
    """
    app = Flask(__name__)
    # Signs the login form's cookie. NOTE: the key is new in each process, so a
    # login page opened before a restart, or served by another process behind
    # a load balancer, is rejected once and the browser gets a fresh form.
    app.secret_key = secrets.token_bytes(32)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.jinja_env.autoescape = True
    app.extensions[EXTENSION] = WebState(
        config=config,
        store=store,
        accounts=Accounts(store.engine),
        queue=ReviewQueue(store.engine),
        zone=ZoneInfo(config.timezone),
        now=now or (lambda: datetime.now(UTC)),
    )
    if config.web.behind_proxy:
        # One proxy in front sets X-Forwarded-For and X-Forwarded-Proto.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)

    filters.register(app)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(views.blueprint)
    app.register_blueprint(ack.blueprint)
    app.register_blueprint(actions.blueprint)
    app.register_blueprint(model_page.blueprint)
    for pages in (problems, report, sources):
        app.register_blueprint(pages.blueprint)
    app.before_request(auth.load_session)
    app.after_request(_add_security_headers)
    app.register_error_handler(HTTPException, _render_error)
    return app


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not response.headers.get("Cache-Control"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _render_error(error: HTTPException) -> Response | HTTPException:
    if error.code is None or error.code < 400:
        return error
    # The error's own response keeps headers such as Allow of a 405.
    response = error.get_response()
    response.set_data(render_template("error.html", error=error))
    return response
