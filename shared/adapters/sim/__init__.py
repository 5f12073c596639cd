"""The simulated world as the functions meet it: venues and chain over a market store; the in-memory store."""
