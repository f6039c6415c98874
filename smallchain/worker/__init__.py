"""Celery adapters: thin tasks around the engine's steps (``smallchain.worker.app``)."""
