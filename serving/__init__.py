"""XiaoKe inference server: Ray Serve application, ONNX Runtime models, FAQ retrieval.

Importing this package (or any module in it) loads no model, opens no session and touches no GPU: heavy
objects are created in deployment constructors. `serving.retrieval` is pure (no Ray) so benchmarks and
training can reuse the keyword index, dense index and fusion.
"""
