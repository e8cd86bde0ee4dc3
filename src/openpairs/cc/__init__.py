"""Common Crawl: WAT reading, link extraction, URL and alt-text rules, language id, licence detection."""
