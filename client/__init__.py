"""`dex`: a command-line client of the engine's public API (HTTP and WebSockets only; it imports
nothing of the engine, so it works against any deployment it can reach)."""
