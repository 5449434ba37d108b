"""Optional integrations with web frameworks; the core never imports them."""
