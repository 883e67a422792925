"""Quality benchmarks on the shared research datasets (read by path, never copied into the repo).

``python -m training.benchmarks {all,retrieval,intents,sentiment} ...`` - see ``training/benchmarks/__main__.py``.
"""
