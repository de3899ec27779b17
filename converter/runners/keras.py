"""Run a Keras file with Keras itself, ``safe_mode=True`` (no deserialized Python code)."""

from __future__ import annotations

import numpy as np

from ..errors import BadInput, first_line
from ..frameworks import require
from ..layouts import to_channels_first, to_channels_last

SAFETY = "Keras load_model(safe_mode=True, compile=False)"


def load(path):
    keras = require("keras")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises ValueError, TypeError, OSError... for bad files
        raise BadInput(f"{path}: Keras could not load it safely ({type(error).__name__}: {first_line(error)})") from None

    def predict(inputs):
        """Canonical (channels-first) in and out; Keras itself sees channels-last."""
        inputs = [to_channels_last(x) for x in inputs]
        outputs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [to_channels_first(np.asarray(o)) for o in outputs]

    return predict, SAFETY
