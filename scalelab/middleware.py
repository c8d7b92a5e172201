"""Project-wide response headers."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

# plotly.js injects style attributes, so styles need 'unsafe-inline'; no eval.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; font-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'self'"
)


def content_security_policy(get_response):
    """Add a Content-Security-Policy header unless the view set its own."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            response = await get_response(request)
            response.headers.setdefault("Content-Security-Policy", CSP)
            return response

        markcoroutinefunction(middleware)
        return middleware

    def middleware(request):
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    return middleware
