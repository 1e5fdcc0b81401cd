"""JSON Schema files of the event contract and the worker's outputs, for any language.

``python -m schemas.json_schema`` (``make schemas``) rewrites
``schemas/json/*.schema.json`` from the pydantic models; a test fails when
the committed files are stale.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.alerts import AlertDeadLetter, AlertEvent
from schemas.events import LabelEvent, PredictionBatch, PredictionEvent
from schemas.outputs import DeadLetter, WindowResult

SCHEMA_FOLDER = Path(__file__).parent / "json"
CONTRACT_MODELS: dict[str, type[BaseModel]] = {
    "prediction_event": PredictionEvent,
    "prediction_batch": PredictionBatch,
    "label_event": LabelEvent,
    "window_result": WindowResult,
    "dead_letter": DeadLetter,
    "alert": AlertEvent,
    "alert_dead_letter": AlertDeadLetter,
}
#: What workers write: described as serialized (computed fields included,
#: fields with defaults always present), not as accepted on input.
OUTPUT_MODELS = frozenset({"window_result", "dead_letter", "alert", "alert_dead_letter"})


def json_schema(model: type[BaseModel], output: bool = False) -> dict[str, Any]:
    """The model's JSON Schema (draft 2020-12) with a prose-only description.

    Examples
    --------
    >>> json_schema(LabelEvent)["required"]
    ['event_id', 'model', 'label', 'timestamp']
    """
    schema = model.model_json_schema(mode="serialization" if output else "validation")
    summary = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "description": " ".join(summary.split()),
    }


def rendered_schemas() -> dict[str, str]:
    """File name -> file content for every contract model."""
    return {
        f"{name}.schema.json": json.dumps(
            json_schema(model, output=name in OUTPUT_MODELS), indent=2, sort_keys=True
        )
        + "\n"
        for name, model in CONTRACT_MODELS.items()
    }


def write_schemas(folder: Path = SCHEMA_FOLDER) -> list[Path]:
    """Write every schema file into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rendered_schemas().items():
        path = folder / name
        path.write_text(content)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        print(f"wrote {path}")
