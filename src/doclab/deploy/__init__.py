"""Deployment: the exported ONNX models and their manifest, run with onnxruntime, numpy and OpenCV only (no torch)."""
