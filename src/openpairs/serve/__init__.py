"""The search service: FastAPI app (our API + clip-retrieval's) and the static web page."""
