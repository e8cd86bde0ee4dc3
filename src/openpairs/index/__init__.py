"""faiss kNN indexes over the dataset's CLIP embeddings (no web code; never imports stages or the CLI)."""
