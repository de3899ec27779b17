"""wconv: convert neural-network weights between Keras, PyTorch and ONNX, and prove the port.

    import converter
    graph = converter.read("model.h5")          # any format -> canonical IR (no TensorFlow import)
    converter.write(graph, "model.pt")          # IR -> torch state_dict + generated model.py
    converter.convert("model.h5", "model.onnx")  # both at once
    report = converter.validate("model.h5", "model.onnx")
"""

__version__ = "0.1.0"

from .api import Conversion, convert, read, write  # noqa: E402
from .errors import WconvError  # noqa: E402
from .ir import Graph, Node, Value  # noqa: E402


def validate(source, target, **options):
    """Run both models on the same inputs; see ``converter.validation.validate``."""
    from .validation import validate as run

    return run(source, target, **options)


__all__ = ["Conversion", "Graph", "Node", "Value", "WconvError", "convert", "read", "validate", "write"]
