"""Async HTTP fetching for the download stage: address guard, opt-out headers, robots.txt, retries."""
