"""Docent: a stateful RAG agent service."""
