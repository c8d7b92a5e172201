from django.contrib.auth.views import LogoutView
from django.urls import path

from . import views

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
    path("glossary/", views.glossary, name="glossary"),
    path("search/", views.search, name="search"),
    path("progress/", views.progress_view, name="progress"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path(
        "accounts/logout/", LogoutView.as_view(next_page="lesson-index"), name="logout"
    ),
    path("accounts/signup/", views.sign_up, name="signup"),
]
