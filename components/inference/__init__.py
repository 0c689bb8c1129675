"""Inference, shared by evaluation and serving: the modes (``modes``: tiled or global view),
tiling, the global-view transfer, and onnxruntime / TensorRT sessions. No torch here."""
