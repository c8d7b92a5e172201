from channels.security.websocket import WebsocketDenier
from django.urls import re_path
from django.urls.converters import UUIDConverter

from .consumers import RunConsumer

websocket_urlpatterns = [
    re_path(rf"^ws/runs/(?P<run_id>{UUIDConverter.regex})/$", RunConsumer.as_asgi()),
    # No run has an id that is not a UUID: refuse the handshake, rather than let
    # the router fail on a path it has no route for.
    re_path(r"^ws/runs/[^/]+/$", WebsocketDenier.as_asgi()),
]
