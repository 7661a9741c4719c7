"""``facelabel serve``: jobs, the faces grid, keyboard review, models and one face's history,
server-rendered from the database the CLI uses. Images are read only through the confined
reader, from paths the database holds for a result id (never a path from the URL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from facelabel.artifact import ATTRIBUTES
from facelabel.settings import Settings
from facelabel.web import pages
from facelabel.web.images import ImageStore
from facelabel.web.security import CSRF_COOKIE, CSRF_FIELD, NEW_CSRF, Guard

HERE = Path(__file__).parent
ROUTES = [
    Route("/", lambda request: RedirectResponse("/faces", status_code=303)),
    Route("/jobs", pages.jobs),
    Route("/jobs/{job_id:int}", pages.job),
    Route("/faces", pages.faces),
    Route("/review", lambda request: RedirectResponse(f"/review/{ATTRIBUTES[0]}", status_code=303)),
    Route("/review/{attribute}", pages.review_page),
    Route("/review/{attribute}", pages.review_answer, methods=["POST"]),
    Route("/models", pages.models),
    Route("/face/{result_id:int}", pages.face),
    Route("/thumb/{result_id:int}.jpg", pages.thumb),
    Route("/photo/{result_id:int}.jpg", pages.photo),
    Route("/login", pages.login),
    Route("/healthz", lambda request: Response("ok\n", media_type="text/plain")),
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]


def create_app(settings: Settings, sessions: sessionmaker[Session], *, token: str | None) -> Starlette:
    """The app; ``token`` None means anyone who can reach it may write (loopback). With
    FACELABEL_SERVE_BASIC_AUTH every page but /healthz asks for that credential."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(attributes=ATTRIBUTES, csrf_field=CSRF_FIELD)
    app = Starlette(
        routes=ROUTES,
        exception_handlers={HTTPException: _error_page},
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_gate)],
    )
    basic = settings.serve_basic_auth.get_secret_value() if settings.serve_basic_auth else None
    app.state.guard = Guard(token, basic)
    app.state.sessions = sessions
    app.state.images = ImageStore(settings)
    app.state.templates = templates
    return app


async def _error_page(request: Request, exc: HTTPException) -> Response:
    return pages.page(request, "message.html", status_code=exc.status_code, message=exc.detail)


async def _gate(request: Request, call_next) -> Response:
    """Basic auth when set (/healthz excepted), then a new browser's CSRF cookie and headers
    that keep the pages to themselves."""
    if request.url.path != "/healthz" and not request.app.state.guard.let_in(request):
        return Response(
            "facelabel: sign in", status_code=401, headers={"WWW-Authenticate": 'Basic realm="facelabel"'}
        )
    response = await call_next(request)
    new = request.scope.get(NEW_CSRF)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict")
    response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self'; frame-ancestors 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
