from django.urls import re_path

from .consumers import RunConsumer

websocket_urlpatterns = [
    re_path(r"^ws/runs/(?P<run_id>[^/]+)/$", RunConsumer.as_asgi()),
]
