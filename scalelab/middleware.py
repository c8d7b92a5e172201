"""Project-wide request and response headers."""

from __future__ import annotations

from django.utils.deprecation import MiddlewareMixin

from .limits import trusted_proxies

# plotly.js injects style attributes, so styles need 'unsafe-inline'; no eval.
# Websockets may go to this site only ({host}, the request's). Both schemes are
# listed: behind a proxy that ends TLS the page is on https (so it opens wss://)
# while the request that served it may look like plain http.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws://{host} wss://{host}; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; "
    "form-action 'self'"
)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Add a Content-Security-Policy header unless the view set its own."""

    def process_response(self, request, response):
        if "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = CSP.format(
                host=request.get_host()
            )
        return response


class TrustedProxyMiddleware(MiddlewareMixin):
    """Drop ``X-Forwarded-Proto`` unless a trusted proxy sent it.

    Django believes the header (``SECURE_PROXY_SSL_HEADER``) from anyone; only the
    proxy that ends TLS knows whether the browser used HTTPS.
    """

    def process_request(self, request):
        if request.META.get("REMOTE_ADDR") not in trusted_proxies():
            request.META.pop("HTTP_X_FORWARDED_PROTO", None)
