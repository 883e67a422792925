"""Offline training pipeline: tokenizer/vocabulary, MLM pretraining, intent/sentiment/embedder training,
evaluation and quality benchmarks. Produces checkpoints that `export` turns into ONNX bundles."""
