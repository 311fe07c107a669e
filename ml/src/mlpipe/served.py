"""What the model server loads for a registered version: the compiled model when the version
passed the parity gate (`mlpipe.compiled`), else the scikit-learn reference (`mlpipe.registry`).

Light on purpose: the model-server image carries MLflow's client (mlflow-skinny), ONNX Runtime
and NumPy, not pandas or scikit-learn; the reference is imported only for a version that has no
compiled model, with a clear error where it is not installed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlpipe.compiled import COMPILED_ARTIFACT, TAG_COMPILED_PARITY, CompiledModel
from mlpipe.predictor import Predictor


class ServedModelError(RuntimeError):
    """The version cannot be served by what this installation has."""


def read_served_model(model_uri: str, *, tracking_uri: str | None) -> Predictor:
    """The model to serve for ``models:/NAME/VERSION`` from the server at ``tracking_uri``."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    name, _, number = model_uri.removeprefix("models:/").partition("/")
    if not name or not number.isdigit():
        raise ServedModelError(f"{model_uri}: expected models:/NAME/VERSION")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = client.get_model_version(name, number)
    if version.tags.get(TAG_COMPILED_PARITY) == "passed":
        with tempfile.TemporaryDirectory(prefix="mlpipe-compiled-") as folder:
            local = mlflow.artifacts.download_artifacts(
                run_id=version.run_id,
                artifact_path=COMPILED_ARTIFACT,
                dst_path=folder,
                tracking_uri=tracking_uri,
            )
            return CompiledModel.from_bytes(Path(local).read_bytes())
    try:
        from mlpipe.registry import read_model
    except ImportError as exc:  # the slim model-server image: no pandas, no scikit-learn
        raise ServedModelError(
            f"{model_uri} has no compiled model that passed the parity gate (tag "
            f"{TAG_COMPILED_PARITY}={version.tags.get(TAG_COMPILED_PARITY)!r}) and this "
            f"installation cannot load the scikit-learn model ({exc}): retrain it with this "
            "version of mlpipe, or serve it with `pip install mlpipe[train]`"
        ) from exc
    return read_model(model_uri, tracking_uri=tracking_uri)
