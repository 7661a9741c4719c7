"""The review app's pages: each reads the database through ``request.app.state.sessions`` and
renders a template; images come from the paths the database holds for a result id."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from db import queries, review
from db.corrections import CorrectionError, correct_face
from db.registry import list_versions
from db.training_runs import list_runs
from facelabel.artifact import ATTRIBUTES
from facelabel.clock import utcnow
from facelabel.web.security import CSRF_FIELD, TOKEN_COOKIE, csrf_ok, csrf_token

PAGE = 48
AUTHOR = "review app"


def page(request: Request, name: str, status_code: int = 200, **context) -> Response:
    """Render template ``name`` with the CSRF token and whether this visitor may make changes."""
    state = request.app.state
    context.update(csrf=csrf_token(request), may_write=state.guard.may_write(request))
    return state.templates.TemplateResponse(request, name, context, status_code=status_code)


def jobs(request: Request) -> Response:
    with request.app.state.sessions() as session:
        rows = [_with_rate(row) for row in queries.list_jobs(session, 200)]
    running = any(row["status"] in ("scanning", "running") for row in rows)
    return page(request, "jobs.html", jobs=rows, refresh=running)


def job(request: Request) -> Response:
    job_id = request.path_params["job_id"]
    with request.app.state.sessions() as session:
        row = queries.get_job(session, job_id)
        if row is None:
            raise HTTPException(404, f"no job {job_id}")
        failed = [f for _, f in zip(range(500), queries.failures(session, job_id))]
    return page(
        request,
        "job.html",
        job=_with_rate(row),
        failures=failed,
        refresh=row["status"] in ("scanning", "running"),
    )


def faces(request: Request) -> Response:
    filters, problems = _face_filters(request)
    rows: list[dict] = []
    with request.app.state.sessions() as session:
        versions = {v["name"]: v["id"] for v in list_versions(session)}
        version = filters.pop("model_version", None)
        if version is not None and version not in versions:
            problems.append(f"no model version {version!r}")
        if not problems:
            rows = list(
                queries.query_faces(
                    session, limit=PAGE + 1, model_version_id=versions.get(version), **filters
                )
            )
    more = rows[PAGE] if len(rows) > PAGE else None
    rows = rows[:PAGE]
    next_url = None
    if more is not None:
        kept = [
            (k, v) for k, v in request.query_params.multi_items() if k not in ("after_path", "after_face")
        ]
        last = rows[-1]
        next_url = "?" + urlencode([*kept, ("after_path", last["path"]), ("after_face", last["face"])])
    chosen = {"has": filters.get("has", []), "lacks": filters.get("lacks", [])}
    return page(
        request,
        "faces.html",
        faces=rows,
        problems=problems,
        next_url=next_url,
        params=request.query_params,
        versions=sorted(versions),
        chosen=chosen,
    )


def review_page(request: Request) -> Response:
    attribute = _attribute(request)
    after = _cursor(request)
    with request.app.state.sessions() as session:
        queue = review.review_queue(session, attribute, after=after, limit=12)
        current = review.face(session, queue[0]["result_id"]) if queue else None
    return page(
        request,
        "review.html",
        attribute=attribute,
        queue=queue,
        current=current,
        after=after,
        done=request.query_params.get("done"),
    )


async def review_answer(request: Request) -> Response:
    """y / n store a correction like ``facelabel correct``; skip moves the queue past the face."""
    attribute = _attribute(request)
    form = await request.form()
    _check_write(request, form.get(CSRF_FIELD))
    answer, result_id = form.get("answer"), _int(form.get("result_id"))
    cursor = {k: form[k] for k in ("after_distance", "after_id") if form.get(k)}
    if answer == "skip":
        cursor = {"after_distance": form.get("distance"), "after_id": result_id}
    elif answer in ("yes", "no"):
        await run_in_threadpool(_correct, request.app.state.sessions, result_id, attribute, answer == "yes")
        cursor["done"] = result_id
    else:
        raise HTTPException(400, "answer must be yes, no or skip")
    return RedirectResponse(f"/review/{attribute}?{urlencode(cursor)}", status_code=303)


def _correct(sessions, result_id: int, attribute: str, value: bool) -> None:
    with sessions.begin() as session:
        shown = review.face(session, result_id)
        if shown is None or not shown["paths"]:
            raise HTTPException(404, "no such face")
        try:
            correct_face(session, shown["paths"][0], shown["face"], {attribute: value}, AUTHOR)
        except CorrectionError as exc:
            raise HTTPException(409, str(exc)) from None


def models(request: Request) -> Response:
    with request.app.state.sessions() as session:
        versions = list(list_versions(session))
        runs = list(list_runs(session))
        ids = {v["name"]: v["id"] for v in versions}
        chosen = request.query_params.get("challenger")
        run = next((r for r in runs if r["challenger"] == chosen), None) if chosen else None
        differing = []
        if chosen in ids:
            champion = ids.get(run["champion"]) if run else None
            differing = list(review.disagreements(session, ids[chosen], champion))
    return page(request, "models.html", versions=versions, runs=runs, chosen=chosen, differing=differing)


def face(request: Request) -> Response:
    with request.app.state.sessions() as session:
        shown = review.face(session, request.path_params["result_id"])
        if shown is None:
            raise HTTPException(404, "no such face")
        past = review.history(session, shown["image_id"], shown["face"])
    return page(request, "face.html", face=shown, history=past)


def thumb(request: Request) -> Response:
    return _image(request, request.app.state.images.thumbnail)


def photo(request: Request) -> Response:
    return _image(request, request.app.state.images.photo)


def _image(request: Request, make) -> Response:
    with request.app.state.sessions() as session:
        shown = review.face(session, request.path_params["result_id"])
        if shown is None:
            raise HTTPException(404, "no such face")
        roots = {p: review.roots_of(session, shown["image_id"], p) for p in shown["paths"]}
    jpeg = make(shown, roots)
    if jpeg is None:
        raise HTTPException(404, "the photo cannot be read from its job's folders")
    return Response(
        jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=31536000, immutable"}
    )


def login(request: Request) -> Response:
    offered = request.query_params.get("token", "")
    if not request.app.state.guard.token_matches(offered):
        return page(request, "message.html", status_code=403, message="That token is not this server's.")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(TOKEN_COOKIE, offered, httponly=True, samesite="strict")
    return response


def _check_write(request: Request, submitted) -> None:
    if not request.app.state.guard.may_write(request):
        raise HTTPException(
            403, "changes need the token printed when the server started: open /login?token=…"
        )
    if not csrf_ok(request, submitted):
        raise HTTPException(403, "the form is stale or came from another site: reload the page")


def _with_rate(row: dict) -> dict:
    end = row.get("finished") or utcnow()
    seconds = (end - row["created"]).total_seconds() if isinstance(row["created"], dt.datetime) else 0
    total = row["images"]
    reached = row["done"] + row["failed"]
    return row | {
        "rate": round(reached / seconds, 1) if seconds > 0 else None,
        "percent": round(100 * reached / total) if total else None,
    }


def _attribute(request: Request) -> str:
    attribute = request.path_params["attribute"]
    if attribute not in ATTRIBUTES:
        raise HTTPException(404, f"no attribute {attribute!r}: choose from {', '.join(ATTRIBUTES)}")
    return attribute


def _cursor(request: Request) -> tuple[float, int] | None:
    distance, rid = request.query_params.get("after_distance"), request.query_params.get("after_id")
    if distance is None or rid is None:
        return None
    try:
        return float(distance), int(rid)
    except ValueError:
        raise HTTPException(400, "a bad review position: start again from /review") from None


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HTTPException(400, "a form without its face") from None


def _face_filters(request: Request) -> tuple[dict, list[str]]:
    """``query``'s filters from the URL; problems are shown on the page, not raised."""
    params = request.query_params
    problems = []
    has = [a for a in params.getlist("has") if a]
    lacks = [a for a in params.getlist("not") if a]
    for attribute in ATTRIBUTES:  # the form's one choice per attribute
        choice = params.get(f"f_{attribute}")
        (has if choice == "has" else lacks if choice == "not" else []).append(attribute)
    problems += [f"no attribute {a!r}" for a in (*has, *lacks) if a not in ATTRIBUTES]
    filters: dict = {"has": has, "lacks": lacks, "path_glob": params.get("path") or None}
    for name, key, kind in (("min_prob", "min_prob", float), ("job", "job_id", int)):
        if params.get(name):
            try:
                filters[key] = kind(params[name])
            except ValueError:
                problems.append(f"{name} must be a number")
    if "min_prob" in filters and not 0 <= filters["min_prob"] <= 1:
        problems.append("min_prob must lie between 0 and 1")
    if params.get("model_version"):
        filters["model_version"] = params["model_version"]
    if params.get("after_path") is not None:
        try:
            filters["after"] = (params["after_path"], int(params.get("after_face", "")))
        except ValueError:
            problems.append("a bad page position")
    return filters, problems
