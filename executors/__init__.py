"""Implementations of the :class:`~orchestrator.runtime.contracts.Executor` contract.

Found by the core through entry points (``ponder.executors``, ``ponder.backends``);
``orchestrator/`` never imports this package.
"""
