"""Datasets: built-in sets, uploads, splits, previews.

Modules that need numpy or scikit-learn run in worker processes; the web process
reads only the JSON metadata that `prepared` writes beside the arrays.
"""
