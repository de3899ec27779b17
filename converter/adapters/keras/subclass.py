"""Keras models of a class of their own (every keras-hub backbone subclasses Functional) save their constructor's
arguments, not their layers. With ``--module`` naming the class, wconv builds the model from those arguments, the
user's named code running as for a torch ``--module``, and reads the layer graph it builds; nothing in the file
runs, and the weights still come from the file, under the same layer names."""

from __future__ import annotations

import json

from ...errors import BadInput
from ...frameworks import require
from ..torch.module import named


def layer_graph(spec: str, saved: dict) -> dict:
    """The functional config (layers and their calls) of the model ``saved`` describes, built by the class ``spec``
    names from the saved constructor arguments."""
    keras = require("keras")
    cls = named(spec)
    class_name = saved.get("class_name")
    if getattr(cls, "__name__", None) != class_name:
        raise BadInput(f"--module '{spec}' names {getattr(cls, '__name__', cls)!s}, but the file holds a "
                       f"'{str(class_name)[:60]}'")
    try:
        model = cls.from_config(saved.get("config", {}))
    except Exception as error:  # the user's class, on the file's arguments
        raise BadInput(f"--module '{spec}': cannot build it from the file's arguments ({type(error).__name__}: "
                       f"{str(error).splitlines()[0][:200] if str(error) else ''})") from None
    if not (getattr(model, "inputs", None) and getattr(model, "outputs", None)):
        raise BadInput(f"--module '{spec}': {class_name} is not a functional model (it has no symbolic inputs and "
                       "outputs), so its layers cannot be read without running it")
    # its own structure of inputs and outputs (dicts, for keras-hub's backbones), which Keras runs it with
    functional = keras.Model(model.input, model.output, name=model.name)
    return json.loads(json.dumps(keras.saving.serialize_keras_object(functional)))
