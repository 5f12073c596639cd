"""The local runtime: the web process (Litestar on uvicorn: HTTP API, WebSockets), SAQ worker processes, and the command line that starts them."""
