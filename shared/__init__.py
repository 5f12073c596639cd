"""The code every function shares, by layer: domain (pure), ports (the Protocols), context (what a function is handed), adapters (I/O), settings."""
