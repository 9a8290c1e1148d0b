"""A one-file Django project for the compatibility tests (WSGI and ASGI):
`quicklane django_site:wsgi_app` or `quicklane django_site:asgi_app`."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="quicklane-tests-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import (  # noqa: E402
    Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse,
)
from django.urls import path  # noqa: E402


def item(request: HttpRequest, item_id: int) -> HttpResponse:
    return JsonResponse({"item_id": item_id, "q": request.GET.get("q"), "tag": request.GET.getlist("tag"),
                         "x_token": request.headers.get("X-Token"), "path": request.path,
                         "full": request.get_full_path(), "method": request.method})


def rest(request: HttpRequest, rest: str) -> HttpResponse:
    return JsonResponse({"rest": rest, "path": request.path, "script": request.META.get("SCRIPT_NAME"),
                         "args": list(request.GET.lists())})


def echo_json(request: HttpRequest) -> HttpResponse:
    try:
        return JsonResponse({"got": json.loads(request.body)})
    except ValueError:
        return JsonResponse({"detail": "invalid JSON"}, status=400)


def form(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"name": request.POST.get("name"), "tags": request.POST.getlist("tags")})


def upload(request: HttpRequest) -> HttpResponse:
    f = request.FILES["file"]
    data = f.read()
    return JsonResponse({"filename": f.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                         "note": request.POST.get("note")})


def redirect(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/items/1?q=redirected")


def cookies(request: HttpRequest) -> HttpResponse:
    r = JsonResponse({"got": dict(request.COOKIES)})
    r.set_cookie("session", "abc123", httponly=True)
    r.set_cookie("theme", "dark", max_age=60)
    return r


def stream(request: HttpRequest) -> HttpResponse:
    def gen() -> Iterator[bytes]:
        for i in range(5):
            yield f"chunk {i}\n".encode()

    return StreamingHttpResponse(gen(), content_type="text/plain")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such thing")


def size(request: HttpRequest) -> HttpResponse:
    data = request.body
    return JsonResponse({"size": len(data), "sha256": hashlib.sha256(data).hexdigest()})


def headers(request: HttpRequest) -> HttpResponse:
    return JsonResponse({k: v for k, v in request.headers.items() if k.lower().startswith("x-")})


urlpatterns: list[Any] = [
    path("items/<int:item_id>", item),
    path("path/<path:rest>", rest),
    path("json", echo_json),
    path("form", form),
    path("upload", upload),
    path("redirect", redirect),
    path("cookies", cookies),
    path("stream", stream),
    path("boom", boom),
    path("missing", missing),
    path("size", size),
    path("headers", headers),
]

wsgi_app = get_wsgi_application()
asgi_app = get_asgi_application()
