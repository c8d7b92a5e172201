from django.urls import path

from . import views

urlpatterns = [
    path("api/runs/", views.run_create_view, name="run-create"),
    path("api/runs/<uuid:run_id>/", views.run_detail_view, name="run-detail"),
    path(
        "api/runs/<uuid:run_id>/timeline", views.run_timeline_view, name="run-timeline"
    ),
    path("api/runs/<uuid:run_id>/timeline/", views.run_timeline_view),
    path("api/engines/", views.engines_view, name="engines"),
    path("api/curves/", views.curve_create_view, name="curve-create"),
    path("api/curves/<uuid:job_id>/", views.curve_detail_view, name="curve-detail"),
    path("sandbox/", views.sandbox_index, name="sandbox-index"),
    path("sandbox/<slug:kind>/", views.sandbox, name="sandbox"),
]
