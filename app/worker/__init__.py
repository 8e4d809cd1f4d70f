"""The only package that imports Keras. It runs in worker processes, never in the web process.

Modules here import keras at the top, except `service`, which the web process
references to start a worker and which imports Keras only inside the worker.
"""
