"""openpairs: LAION-style image-text datasets from Common Crawl."""

__version__ = "0.1.0"
