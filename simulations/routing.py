from channels.security.websocket import WebsocketDenier
from django.urls import re_path
from django.urls.converters import UUIDConverter

from lessons.consumers import ClassConsumer

from .consumers import RunConsumer

websocket_urlpatterns = [
    re_path(rf"^ws/runs/(?P<run_id>{UUIDConverter.regex})/$", RunConsumer.as_asgi()),
    re_path(r"^ws/classes/(?P<code>[A-Za-z0-9]{4,8})/$", ClassConsumer.as_asgi()),
    # Any other path (an id that is not a UUID, ``ws/runs/../../admin/``) is
    # refused at the handshake: the router would raise on a path no route matches.
    re_path(r"", WebsocketDenier.as_asgi()),
]
