"""The one way awsctl opens a URL a user gave it (rollout webhooks, alert providers): http and https only,
and a redirect is an answer, never a second address to open. A Canary's author chooses the URL, but the
operator makes the call from inside the cluster: following a 3xx would let any reachable server send
the operator's request on to an address the author could not name directly (the cloud's metadata
service, the apiserver)."""

from __future__ import annotations

import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a 3xx is an answer, never a second address to open
        return None


def opener() -> urllib.request.OpenerDirector:
    """urllib's default opener would also open ftp:, file: and data: addresses, and follow redirects."""
    out = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),  # any other scheme: "unknown url type", never opened
        _NoRedirect(),
    ):
        out.add_handler(handler)
    return out
