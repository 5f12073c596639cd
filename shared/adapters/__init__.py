"""The adapters: the ports' implementations on PostgreSQL, Redis, the queues (SAQ, SQS) and the simulated world."""
