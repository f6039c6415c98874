"""Test infrastructure: real services, a scripted OpenAI-compatible server, Celery workers."""
