"""The production side of keras-instagan: an exported generator served by ONNX Runtime, with NumPy
only (no TensorFlow, no Keras). See `instagan_runner.runner`."""

from instagan_runner.runner import Runner, RunnerInputError

__all__ = ["Runner", "RunnerInputError"]
