"""The web pages: sign-in, sessions and each role's pages, served by the same app as the API.

The pages are a client of the API, in the same process: every page reads and every form
writes through the API's own routes (``services/web/api_client.py``), as the signed-in
person, so a page can never do what the API would refuse (decision 054). This package holds
only what a browser needs beyond that: sessions and CSRF (``sessions.py``), sign-in with an
identity provider or a local account (``accounts.py``, ``routes/sign_in.py``), templates and
static files. See docs/web.md.
"""
