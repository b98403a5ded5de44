"""A model wrapper that bounds the requests in flight and sums their usage (one per run)."""

from __future__ import annotations

from typing import Any

import anyio

from kat_lsp.interfaces import Model, ModelResponse, RequestContext, Usage


class LimitedModel:
    """Bounds the model requests in flight (`model_concurrency`) and sums their usage."""

    def __init__(self, model: Model, limit: int) -> None:
        self.model = model
        self.limiter = anyio.CapacityLimiter(max(1, limit))
        self.usage = Usage()

    async def query(
        self,
        messages: list[dict[str, Any]],
        *,
        ctx: RequestContext,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
    ) -> ModelResponse:
        async with self.limiter:
            response = await self.model.query(
                messages, ctx=ctx, tools=tools, temperature=temperature
            )
        self.usage.add(response.usage)
        return response
