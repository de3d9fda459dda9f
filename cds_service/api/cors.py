"""CORS for browser-based CDS clients (the public CDS Hooks sandbox) on every endpoint."""

from __future__ import annotations

from flask import Flask, Response, request

_ALLOW_HEADERS = "Authorization, Content-Type"
_ALLOW_METHODS = "GET, POST, OPTIONS"


def install_cors(app: Flask, origins: tuple[str, ...]) -> None:
    allow_any = "*" in origins

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if allow_any:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")
        else:
            return response
        response.headers["Access-Control-Allow-Headers"] = _ALLOW_HEADERS
        response.headers["Access-Control-Allow-Methods"] = _ALLOW_METHODS
        response.headers["Access-Control-Max-Age"] = "600"
        return response
