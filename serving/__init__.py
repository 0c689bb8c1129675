"""HTTP serving of the champion model (FastAPI + onnxruntime); no training code here."""
