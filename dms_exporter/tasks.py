"""Stopping asyncio tasks: the one way the exporter cancels a task it started and waits for it."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait", "wait_cancelled"]


async def wait_cancelled(task: asyncio.Task[Any]) -> None:
    """Wait for a task we cancelled to end; a cancel aimed at the caller still propagates
    (``contextlib.suppress(CancelledError)`` would swallow it too)."""
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it to end (``wait_cancelled``)."""
    task.cancel()
    await wait_cancelled(task)
