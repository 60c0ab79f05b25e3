"""Embeddings, hybrid search over pgvector and full text, and the retriever the agent calls."""
