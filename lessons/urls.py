from django.contrib.auth.views import LogoutView
from django.urls import path

from . import class_views, views

urlpatterns = [
    path("", views.lesson_index, name="lesson-index"),
    path("lessons/<slug:slug>/", views.lesson_detail, name="lesson"),
    path(
        "lessons/<slug:slug>/preview/<str:token>/",
        views.lesson_preview,
        name="lesson-preview",
    ),
    path(
        "lessons/<slug:slug>/questions/<int:index>/", views.answer, name="lesson-answer"
    ),
    path(
        "lessons/<slug:slug>/steps/<int:index>/prediction/",
        views.predict,
        name="lesson-predict",
    ),
    path(
        "lessons/<slug:slug>/steps/<int:index>/measured/",
        views.measured,
        name="lesson-measured",
    ),
    path("api/classes/", class_views.class_create_view, name="class-create"),
    path("api/classes/<str:code>/join", class_views.class_join_view, name="class-join"),
    path("api/classes/<str:code>/end", class_views.class_end_view, name="class-end"),
    path(
        "api/classes/<str:code>/results.csv",
        class_views.class_results_view,
        name="class-results",
    ),
    path("api/classes/<str:code>/qr.svg", class_views.class_qr_view, name="class-qr"),
    path("join/", class_views.join_page, name="class-join-index"),
    path("join/<str:code>/", class_views.join_page, name="class-join-page"),
    path("glossary/", views.glossary, name="glossary"),
    path("search/", views.search, name="search"),
    path("progress/", views.progress_view, name="progress"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path(
        "accounts/logout/", LogoutView.as_view(next_page="lesson-index"), name="logout"
    ),
    path("accounts/signup/", views.sign_up, name="signup"),
]
