"""Proxies: twemproxy config editing and restart strategies, HAProxy runtime API."""
