"""The model side: the OpenAI-compatible client, text tool mode, and the scripted test server.

Importing this package does not import `openai` (that happens on the first request).
"""

from kat_lsp.model.openai_model import OpenAIModel
from kat_lsp.model.text_mode import parse_action, render_tool_instructions

__all__ = ["OpenAIModel", "parse_action", "render_tool_instructions"]
