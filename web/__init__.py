"""The review page: a server-rendered web page where analysts work the queue.

``web.app.create_app`` builds the Flask application over a migrated
:class:`storage.Store`, and ``web.commands`` contains the ``serve`` and ``users``
commands that ``pipeline.py`` registers. Every page needs a logged-in user;
sessions, CSRF tokens, login throttling and the audit trail live in
``web.auth``, ``web.throttle`` and ``web.audit``. The package reads and writes
only through ``storage``.
"""
