"""The pure domain: orders and their states, messages, tokens and prices, venue math, routing, resting-order rules, the chain's rules. No I/O."""
