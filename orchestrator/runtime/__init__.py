"""Run state, the anyio scheduler, events, executors' contracts and the registry."""
