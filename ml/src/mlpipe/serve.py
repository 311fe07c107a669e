"""Model server: serves the registry's champion (`models:/MODEL_NAME@champion`) over HTTP.

The champion is loaded once and kept in memory; it is swapped, atomically and thread-safely, only
when the alias points to another version (on `POST /reload` and on a background poll). Starting
before any champion exists is fine: `/ready` and `/predict` answer 503 until training registers one.
Every request is counted in Prometheus metrics whose names are a contract with the dashboards and
alert rules (see the team brief): do not rename them.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final

import numpy as np
import numpy.typing as npt
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlpipe.compiled import CompiledModel
from mlpipe.predictor import Predictor
from mlpipe.schema import (
    FEATURE_COLUMNS,
    MAX_BATCH_ROWS,
    DiamondFeatures,
    PredictRequest,
    PredictResponse,
)
from stackcontract import metrics as metric_names

if TYPE_CHECKING:  # frames only for the scikit-learn reference: the compiled path has none
    import pandas as pd

log = logging.getLogger("mlpipe.serve")

NO_CHAMPION_MESSAGE: Final = "no champion model yet: run ml_training"
# Paths reported as the `endpoint` label; anything else is "other" so scanners cannot blow up
# the label cardinality.
ENDPOINTS: Final = frozenset(
    {"/health", "/ready", "/predict", "/reload", "/model", "/metrics", "/docs", "/openapi.json"}
)
# Single-row predictions take ~1-3 ms in process; batches of MAX_BATCH_ROWS up to ~100 ms.
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


MAX_BODY_ENV: Final = "MODEL_SERVER_MAX_BODY_BYTES"
RELOAD_TOKEN_ENV: Final = "MODEL_SERVER_RELOAD_TOKEN"
# Module level: FastAPI resolves the dependency from the endpoint's (postponed) annotation.
RELOAD_AUTH: Final = HTTPBearer(auto_error=False, description=f"the {RELOAD_TOKEN_ENV}")
DEFAULT_MAX_BODY_BYTES: Final = 1_048_576


class ServeSettings(BaseModel):
    """What the server needs to know; `from_env` builds it from the shared stack configuration."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    champion_alias: str
    tracking_uri: str | None = None
    reload_interval_seconds: float = Field(default=30.0, ge=0)
    # How long startup waits for the first champion load before accepting traffic anyway.
    startup_wait_seconds: float = Field(default=60.0, ge=0)
    # Larger bodies get 413 before they are read in full (a MAX_BATCH_ROWS batch is ~150 kB).
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    # `POST /reload` changes what is served: it needs `Authorization: Bearer <token>`, and with no
    # token configured it is refused outright (the background poll still follows the alias).
    reload_token: SecretStr | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeSettings:
        """Settings from the environment, with defaults from platform/config (via mlpipe.config)."""
        from mlpipe.config import load_settings

        env = os.environ if environ is None else environ
        stack = load_settings(env)
        return cls(
            model_name=stack.model_name,
            champion_alias=stack.champion_alias,
            tracking_uri=stack.mlflow_tracking_uri or None,
            reload_interval_seconds=float(env.get("MODEL_RELOAD_INTERVAL_SECONDS", "30")),
            startup_wait_seconds=float(env.get("MODEL_STARTUP_WAIT_SECONDS", "60")),
            max_body_bytes=int(env.get(MAX_BODY_ENV, str(DEFAULT_MAX_BODY_BYTES))),
            reload_token=SecretStr(env[RELOAD_TOKEN_ENV]) if env.get(RELOAD_TOKEN_ENV) else None,
        )


# --------------------------------------------------------------------------------------- metrics


class ServerMetrics:
    """The model server's Prometheus metrics, in a registry of their own (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            metric_names.MODEL_SERVER_REQUESTS,
            "HTTP requests answered, by endpoint, method and status code.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            metric_names.MODEL_SERVER_REQUEST_DURATION,
            "Time to answer an HTTP request, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predicted_rows = Counter(
            metric_names.MODEL_SERVER_PREDICTED_ROWS,
            "Rows (diamonds) priced by /predict.",
            registry=self.registry,
        )
        self.invalid_payloads = Counter(
            metric_names.MODEL_SERVER_INVALID_PAYLOADS,
            "Requests rejected with 422 because the payload did not match the schema.",
            ["endpoint"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            metric_names.MODEL_SERVER_MODEL_INFO,
            "The model being served (value is always 1).",
            ["model_name", "model_version", "run_id"],
            registry=self.registry,
        )
        self.reloads = Counter(
            metric_names.MODEL_SERVER_MODEL_RELOADS,
            "Champion reload attempts, by outcome (success, failure, unchanged).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("success", "failure", "unchanged"):
            self.reloads.labels(outcome=outcome)  # export zeros so rate() works from the start

    def serving(self, model: ServedModel) -> None:
        """Report `model` as the one being served (and no other)."""
        self.model_info.clear()
        self.model_info.labels(
            model_name=model.name, model_version=model.version, run_id=model.run_id
        ).set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware) counting and timing every request."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        endpoint = path if path in ENDPOINTS else "other"
        status = 500  # what the client gets if the app raises before answering

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            self.metrics.duration.labels(endpoint=endpoint).observe(time.perf_counter() - started)
            self.metrics.requests.labels(
                endpoint=endpoint, method=scope["method"], status=str(status)
            ).inc()


# ------------------------------------------------------------------------------ model lifecycle


@dataclass(frozen=True)
class ServedModel:
    """A loaded registry version. Immutable: a reload builds a new one and swaps the reference."""

    name: str
    version: str
    run_id: str
    model: Predictor

    @property
    def runtime(self) -> str:
        """ "onnx" for the compiled model, "sklearn" for the reference estimator."""
        return "onnx" if isinstance(self.model, CompiledModel) else "sklearn"

    def predict(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Prices for the rows of ``frame``."""
        return np.asarray(self.model.predict(frame), dtype=np.float64)

    def predict_instances(self, instances: list[DiamondFeatures]) -> npt.NDArray[np.float64]:
        """Prices for validated instances: the compiled model takes them without a frame."""
        if isinstance(self.model, CompiledModel):
            return self.model.predict_instances(instances)
        return self.predict(instances_frame(instances))


class NoChampionError(LookupError):
    """The registered model, or its champion alias, does not exist yet."""


class ReloadError(RuntimeError):
    """The champion could not be resolved or loaded; the previous model (if any) keeps serving."""


class ReloadResult(BaseModel):
    """Body of `POST /reload`."""

    model_version: str
    changed: bool


class Problem(BaseModel):
    """Body of a 413 or 503 answer."""

    detail: str


class PayloadErrorItem(BaseModel):
    """One reason a payload was refused (the offending value is not echoed back)."""

    loc: list[str | int]
    msg: str
    type: str | None = None


class PayloadError(BaseModel):
    """Body of a 422 answer: every problem, a one-line summary and how to fix the payload."""

    detail: list[PayloadErrorItem]
    message: str
    hint: str


NOT_READY: Final[dict[int | str, dict[str, Any]]] = {
    503: {"model": Problem, "description": "No champion loaded yet."}
}


class ModelInfo(BaseModel):
    """Body of `GET /model`."""

    name: str
    version: str
    run_id: str
    alias: str
    # "onnx": the compiled model (it passed the parity gate); "sklearn": the reference estimator
    runtime: str


def registry_loader(tracking_uri: str | None) -> Callable[[str], Predictor]:
    """The registry's loader of what is served (`mlpipe.served.read_served_model`) bound to
    ``tracking_uri``: the compiled model of a version that passed the parity gate, else the
    sklearn estimator. The server's pydantic schema does the input checks either way."""
    from mlpipe.served import read_served_model

    return functools.partial(read_served_model, tracking_uri=tracking_uri or None)


class ChampionWatcher:
    """Knows which registry version is being served and replaces it when the alias moves."""

    def __init__(
        self,
        settings: ServeSettings,
        metrics: ServerMetrics,
        *,
        client: Any = None,
        loader: Callable[[str], Predictor] | None = None,
    ) -> None:
        from mlflow import MlflowClient

        self.settings = settings
        self.metrics = metrics
        self.client = client or MlflowClient(
            tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri
        )
        self.loader = loader or registry_loader(settings.tracking_uri)
        self._current: ServedModel | None = None
        self._reload_lock = threading.Lock()  # one reload at a time; readers never wait

    @property
    def current(self) -> ServedModel | None:
        return self._current

    def refresh(self) -> ReloadResult:
        """Load the champion if the alias points to a version other than the one served.

        Raises NoChampionError when there is nothing to load, ReloadError when the registry or
        the artifact store fails (the served model, if any, is kept)."""
        with self._reload_lock:
            version = self._champion_version()
            number = str(version.version)  # an int from some stores, a str from the REST client
            current = self._current
            if current is not None and current.version == number:
                self.metrics.reloads.labels(outcome="unchanged").inc()
                return ReloadResult(model_version=current.version, changed=False)
            # Load by version, not by alias, so a concurrent alias move cannot mix the two.
            uri = f"models:/{self.settings.model_name}/{number}"
            try:
                predictor = self.loader(uri)
            except Exception as exc:
                self.metrics.reloads.labels(outcome="failure").inc()
                raise ReloadError(f"could not load {uri}: {exc}") from exc
            loaded = ServedModel(
                name=self.settings.model_name,
                version=number,
                run_id=str(version.run_id or ""),
                model=predictor,
            )
            self._current = loaded  # a single reference assignment: in-flight requests keep theirs
            self.metrics.serving(loaded)
            self.metrics.reloads.labels(outcome="success").inc()
            log.info("serving %s version %s (run %s)", loaded.name, loaded.version, loaded.run_id)
            return ReloadResult(model_version=loaded.version, changed=True)

    def _champion_version(self) -> Any:
        from mlflow.exceptions import MlflowException

        name, alias = self.settings.model_name, self.settings.champion_alias
        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            # Unknown model -> RESOURCE_DOES_NOT_EXIST; known model without the alias ->
            # INVALID_PARAMETER_VALUE. Neither is a failure: training has not promoted anything.
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                self.metrics.reloads.labels(outcome="unchanged").inc()
                raise NoChampionError(f"{NO_CHAMPION_MESSAGE} ({name}@{alias}: {exc})") from exc
            self.metrics.reloads.labels(outcome="failure").inc()
            raise ReloadError(f"could not resolve {name}@{alias}: {exc}") from exc
        except Exception as exc:  # connection errors from requests/urllib3
            self.metrics.reloads.labels(outcome="failure").inc()
            raise ReloadError(f"could not resolve {name}@{alias}: {exc}") from exc


class ReloadPoller:
    """Background thread: refresh immediately, then every `interval` seconds until stopped."""

    def __init__(self, watcher: ChampionWatcher, interval: float) -> None:
        self.watcher = watcher
        self.interval = interval
        self.first_attempt_done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._attempt()
            self.first_attempt_done.set()
            if self.interval <= 0 or self._stop.wait(self.interval):
                return

    def _attempt(self) -> None:
        try:
            self.watcher.refresh()
        except NoChampionError as exc:
            log.info("%s", exc)
        except ReloadError as exc:
            log.warning("champion reload failed, keeping the served model: %s", exc)
        except Exception:  # the poller must survive anything, or reloads stop silently
            log.exception("unexpected error while polling the champion alias")


# ---------------------------------------------------------------------------------- request I/O


def instances_frame(rows: list[DiamondFeatures]) -> pd.DataFrame:
    """The instances as a DataFrame with the schema's column order (one list per column is the
    cheapest way pandas builds a frame): for the scikit-learn reference only."""
    import pandas as pd

    return pd.DataFrame(
        {column: [getattr(row, column) for row in rows] for column in FEATURE_COLUMNS}
    )


def _error_details(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """Validation errors without the echoed input (a rejected 1000-row batch would come back)."""
    return [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in errors
    ]


def _summary(details: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}" for d in details[:5]]
    more = f" (+{len(details) - 5} more)" if len(details) > 5 else ""
    return "; ".join(parts) + more


PREDICT_HINT: Final = (
    f'Send {{"instances": [...]}} with 1 to {MAX_BATCH_ROWS} objects having exactly the fields '
    f"{', '.join(FEATURE_COLUMNS)}; see GET /openapi.json for types and bounds."
)


def _problem(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A `Problem` answer: the status and one sentence saying what to do."""
    return JSONResponse(status_code=status, content={"detail": message}, headers=headers)


def _unavailable(message: str) -> JSONResponse:
    return _problem(503, message)


def _reload_refusal(
    settings: ServeSettings, credentials: HTTPAuthorizationCredentials | None
) -> JSONResponse | None:
    """None when the request carries the reload token; else the 401/403 answer saying why."""
    if settings.reload_token is None:
        message = f"POST /reload is disabled: the server has no {RELOAD_TOKEN_ENV} configured"
        return _problem(403, message)
    expected = settings.reload_token.get_secret_value().encode()
    given = (credentials.credentials if credentials is not None else "").encode()
    if not hmac.compare_digest(given, expected):
        message = f"POST /reload needs the header 'Authorization: Bearer <{RELOAD_TOKEN_ENV}>'"
        return _problem(401, message, {"WWW-Authenticate": "Bearer"})
    return None


def _too_large(limit: int) -> JSONResponse:
    message = (
        f"request body over {limit} bytes ({MAX_BODY_ENV}); send at most {MAX_BATCH_ROWS} "
        "instances per request"
    )
    return _problem(413, message)


async def _body_within(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` bytes (by its declared
    length, else while streaming it), so an oversized body is never read in full."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _openapi_components() -> dict[str, Any]:
    """The request models' JSON schemas, with references into the document's components (the
    /predict body is validated by hand, so FastAPI would not list them)."""
    schema = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    nested: dict[str, Any] = schema.pop("$defs", {})
    return {**nested, "PredictRequest": schema}


# ----------------------------------------------------------------------------------------- app


def create_app(
    settings: ServeSettings,
    *,
    client: Any = None,
    loader: Callable[[str], Predictor] | None = None,
) -> FastAPI:
    """The model server as an ASGI app; the champion is loaded and polled during its lifespan.
    Nothing process-wide is set: the registry client and loader carry the tracking URI."""
    metrics = ServerMetrics()
    watcher = ChampionWatcher(settings, metrics, client=client, loader=loader)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        poller = ReloadPoller(watcher, settings.reload_interval_seconds)
        poller.start()
        # Wait (bounded) for the first load so a started server is normally a ready one.
        import anyio.to_thread

        await anyio.to_thread.run_sync(
            poller.first_attempt_done.wait, settings.startup_wait_seconds
        )
        yield
        poller.stop()

    app = FastAPI(
        title="Diamond price model server",
        summary=f"Serves models:/{settings.model_name}@{settings.champion_alias}.",
        lifespan=lifespan,
    )
    app.state.watcher = watcher
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(RequestValidationError)
    async def invalid_payload(request: Request, exc: RequestValidationError) -> JSONResponse:
        path = request.url.path
        metrics.invalid_payloads.labels(endpoint=path if path in ENDPOINTS else "other").inc()
        details = _error_details(exc.errors())
        content = {"detail": details, "message": _summary(details), "hint": PREDICT_HINT}
        return JSONResponse(status_code=422, content=jsonable_encoder(content))

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process is up (whether or not a model is loaded)."""
        return {"status": "ok"}

    @app.get("/ready", responses=NOT_READY)
    async def ready() -> Response:
        """Readiness: 200 once a champion is loaded."""
        model = watcher.current
        if model is None:
            return _unavailable(NO_CHAMPION_MESSAGE)
        return JSONResponse({"status": "ready", "model_version": model.version})

    @app.get("/model", response_model=ModelInfo, responses=NOT_READY)
    async def model_info() -> Response:
        """The model being served."""
        model = watcher.current
        if model is None:
            return _unavailable(NO_CHAMPION_MESSAGE)
        info = ModelInfo(
            name=model.name,
            version=model.version,
            run_id=model.run_id,
            alias=settings.champion_alias,
            runtime=model.runtime,
        )
        return Response(info.model_dump_json(), media_type="application/json")

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={
            413: {"model": Problem, "description": f"Body over {MAX_BODY_ENV} bytes."},
            422: {"model": PayloadError, "description": "The payload breaks the schema."},
            **NOT_READY,
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
                },
            }
        },
    )
    async def predict(request: Request) -> Response:
        """Price 1 to MAX_BATCH_ROWS diamonds with the champion."""
        body = await _body_within(request, settings.max_body_bytes)
        if body is None:
            return _too_large(settings.max_body_bytes)
        try:
            payload = PredictRequest.model_validate_json(body)
        except ValidationError as exc:
            # Same shape as FastAPI's own body errors: loc starts with "body".
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None
        model = watcher.current  # one read: a concurrent swap cannot change it mid-request
        if model is None:
            return _unavailable(NO_CHAMPION_MESSAGE)
        predictions = model.predict_instances(payload.instances)
        metrics.predicted_rows.inc(len(payload.instances))
        response = PredictResponse(
            predictions=predictions.tolist(), model_name=model.name, model_version=model.version
        )
        return Response(response.model_dump_json(), media_type="application/json")

    @app.post(
        "/reload",
        response_model=ReloadResult,
        responses={
            401: {"model": Problem, "description": "Missing or wrong reload token."},
            403: {"model": Problem, "description": "Reloads are disabled (no token configured)."},
            **NOT_READY,
        },
    )
    def reload(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(RELOAD_AUTH)],
    ) -> Response:
        """Reload the champion if the alias moved (runs in a worker thread: loading takes time).
        Needs `Authorization: Bearer <MODEL_SERVER_RELOAD_TOKEN>`."""
        if (refusal := _reload_refusal(settings, credentials)) is not None:
            return refusal
        try:
            result = watcher.refresh()
        except NoChampionError as exc:
            return _unavailable(str(exc))
        except ReloadError as exc:
            current = watcher.current
            kept = f"; still serving version {current.version}" if current else ""
            return _unavailable(f"{exc}{kept}")
        return Response(result.model_dump_json(), media_type="application/json")

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics() -> Response:
        """Prometheus exposition of the model server's metrics."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                _openapi_components()
            )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# ---------------------------------------------------------------------------------- entrypoint


def default_port(environ: Mapping[str, str] | None = None) -> int:
    """MODEL_SERVER_PORT from the environment, else from platform/config/ports.env."""
    from mlpipe.config import find_repo_root
    from stackcontract.envfile import parse_env_file as read_env_file

    env = os.environ if environ is None else environ
    if env.get("MODEL_SERVER_PORT"):
        return int(env["MODEL_SERVER_PORT"])
    root = find_repo_root()
    ports = read_env_file(root / "platform/config/ports.env") if root is not None else {}
    if "MODEL_SERVER_PORT" not in ports:
        raise SystemExit(
            "No port: set MODEL_SERVER_PORT or pass --port (platform/config/ports.env not found)."
        )
    return int(ports["MODEL_SERVER_PORT"])


def run(host: str, port: int | None = None, *, log_level: str = "info") -> None:
    """Serve until interrupted (used by `python -m mlpipe.serve` and `mlpipe serve`)."""
    import uvicorn

    from mlpipe.config import export_mlflow_env, load_settings

    # One OpenMP thread per predict (read when scikit-learn loads, i.e. with the first model):
    # requests are served one at a time anyway, and on a busy 2-core host the tree ensemble's
    # thread barriers turned ~4 ms predictions into 1-2 s outliers. Override with the env var.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Fail fast on an unreachable registry: the poller retries on its own schedule anyway.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    export_mlflow_env(load_settings())  # S3 endpoint + credentials for artifact downloads
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = create_app(ServeSettings.from_env())
    uvicorn.run(app, host=host, port=port or default_port(), log_level=log_level, access_log=False)


def main(argv: list[str] | None = None) -> None:
    """`python -m mlpipe.serve [--host H] [--port P]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlpipe.serve", description=__doc__)
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="default: $MODEL_SERVER_PORT or ports.env"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    args = parser.parse_args(argv)
    run(args.host, args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
