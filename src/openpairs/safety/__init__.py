"""Safety: perceptual hashes, safety lists (blocklists), signals carried inside image bytes."""
