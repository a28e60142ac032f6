"""The ASGI middleware on a real FastAPI app and the WSGI middleware on a real
Flask app, through each framework's test client."""

from __future__ import annotations

import time

import pytest

import pulsyon
from pulsyon.asgi import PulsyonMiddleware as AsgiMiddleware
from pulsyon.wsgi import instrument_flask

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def stored(env, service):
    rows = env.rows(
        "select endpoint, method, status_code, latency_ms, trace_id, request_id, environment,"
        f" release, response_bytes from api_logs where service = '{service}' order by time"
    )
    return [
        dict(endpoint=r[0], method=r[1], status=int(r[2]), latency=float(r[3]), trace=r[4],
             request_id=r[5], environment=r[6], release=r[7], response_bytes=int(r[8]))
        for r in rows
    ]


def check(rows):
    by_endpoint = {}
    for r in rows:
        by_endpoint.setdefault((r["endpoint"], r["method"]), []).append(r)
    users = by_endpoint[("/users/{user_id}", "GET")]
    assert len(users) == 3 and {r["status"] for r in users} == {200}
    assert all(r["trace"] == TRACE for r in users[:1])
    assert users[0]["request_id"] == "r-1"
    assert all(r["environment"] == "test" and r["release"] == "1.2.3" for r in rows)
    [slow] = by_endpoint[("/slow", "GET")]
    assert slow["latency"] >= 50.0, slow  # the handler sleeps 50 ms
    # Each request's own time, not the client's since some start: the fastest
    # of the three plain requests took less than the one that slept.
    assert min(r["latency"] for r in users) < slow["latency"]
    [created] = by_endpoint[("/users", "POST")]
    assert created["status"] == 201
    [boom] = by_endpoint[("/boom", "GET")]
    assert boom["status"] == 500
    [missing] = by_endpoint[("(unmatched)", "GET")]
    assert missing["status"] == 404
    assert users[1]["response_bytes"] > 0
    assert len(rows) == 7


def test_asgi_middleware_on_fastapi_records_route_templates_statuses_and_latencies(env):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    client = pulsyon.Client(env.url, env.key)
    app = FastAPI()
    app.add_middleware(AsgiMiddleware, client=client, service="fastapi-app",
                       environment="test", release="1.2.3")

    @app.get("/users/{user_id}")
    async def user(user_id: int):
        return {"id": user_id}

    @app.post("/users", status_code=201)
    async def create():
        return {"id": 1}

    @app.get("/slow")
    async def slow():
        import asyncio
        await asyncio.sleep(0.05)
        return {}

    @app.get("/boom")
    async def boom():
        raise RuntimeError("the handler fails")

    http = TestClient(app, raise_server_exceptions=False)
    assert http.get("/users/1", headers={"traceparent": TRACEPARENT, "x-request-id": "r-1"}).status_code == 200
    assert http.get("/users/2").status_code == 200
    assert http.get("/users/3").status_code == 200
    assert http.post("/users").status_code == 201
    assert http.get("/slow").status_code == 200
    assert http.get("/boom").status_code == 500
    assert http.get("/nowhere/42").status_code == 404
    assert client.close(30)
    check(stored(env, "fastapi-app"))


def test_wsgi_middleware_on_flask_records_route_templates_statuses_and_latencies(env):
    from flask import Flask

    client = pulsyon.Client(env.url, env.key)
    app = Flask("shop")
    instrument_flask(app, client, service="flask-app", environment="test", release="1.2.3")

    @app.get("/users/<int:user_id>")
    def user(user_id):
        return {"id": user_id}

    @app.post("/users")
    def create():
        return {"id": 1}, 201

    @app.get("/slow")
    def slow():
        time.sleep(0.05)
        return {}

    @app.get("/boom")
    def boom():
        raise RuntimeError("the handler fails")

    # buffered: the test client closes each response, as a WSGI server does, which
    # is when the middleware records the request.
    http = app.test_client()
    assert http.get("/users/1", headers={"traceparent": TRACEPARENT, "x-request-id": "r-1"}, buffered=True).status_code == 200
    assert http.get("/users/2", buffered=True).status_code == 200
    assert http.get("/users/3", buffered=True).status_code == 200
    assert http.post("/users", buffered=True).status_code == 201
    assert http.get("/slow", buffered=True).status_code == 200
    assert http.get("/boom", buffered=True).status_code == 500
    assert http.get("/nowhere/42", buffered=True).status_code == 404
    assert client.close(30)
    check(stored(env, "flask-app"))


def test_a_raising_wsgi_app_is_recorded_as_500_and_the_exception_goes_on(env):
    from pulsyon.wsgi import PulsyonMiddleware

    client = pulsyon.Client(env.url, env.key)

    def app(environ, start_response):
        raise ValueError("broken app")

    wrapped = PulsyonMiddleware(app, client, service="raw-wsgi")
    with pytest.raises(ValueError):
        wrapped({"REQUEST_METHOD": "GET", "pulsyon.route": "/things/<id>"}, lambda *a: None)
    assert client.close(30)
    assert env.rows("select endpoint, status_code from api_logs") == [["/things/{id}", "500"]]


def test_wsgi_middleware_on_django_records_url_patterns_as_templates(env):
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="test",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__ + "_django_urls",
        MIDDLEWARE=["pulsyon.wsgi.DjangoRoute"],
        LOGGING_CONFIG=None,
    )
    import sys
    import types

    from django.http import HttpResponse, JsonResponse
    from django.urls import path

    def user(request, user_id):
        return JsonResponse({"id": user_id})

    def boom(request):
        raise RuntimeError("the handler fails")

    urls = types.ModuleType(__name__ + "_django_urls")
    urls.urlpatterns = [path("users/<int:user_id>/", user), path("boom/", boom),
                        path("", lambda r: HttpResponse("home"))]
    sys.modules[urls.__name__] = urls
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from werkzeug.test import Client as WsgiClient

    from pulsyon.wsgi import PulsyonMiddleware

    client = pulsyon.Client(env.url, env.key)
    app = PulsyonMiddleware(get_wsgi_application(), client=client, service="django-app")
    http = WsgiClient(app)
    assert http.get("/users/7/", buffered=True).status_code == 200
    assert http.get("/boom/", buffered=True).status_code == 500
    assert http.get("/nowhere/", buffered=True).status_code == 404
    assert http.get("/", buffered=True).status_code == 200
    assert client.close(30)
    rows = env.rows("select endpoint, status_code from api_logs order by time")
    assert rows == [["/users/{user_id}/", "200"], ["/boom/", "500"], ["(unmatched)", "404"], ["/", "200"]]
