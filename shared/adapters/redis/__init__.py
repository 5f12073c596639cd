"""Redis: event publishing, per-client admission, the resting-order index, the market lease, connections."""
