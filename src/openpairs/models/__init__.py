"""Models: CLIP loading (open_clip) and the LAION heads (NSFW, aesthetic, watermark). No stage imports."""
