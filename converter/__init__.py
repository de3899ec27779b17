"""wconv: convert neural-network weights between Keras, PyTorch and ONNX, and prove the port."""

__version__ = "0.1.0"
