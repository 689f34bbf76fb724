"""Reference services the lab runs as the system under test."""
