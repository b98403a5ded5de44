-- Headless check of docs/howto/neovim.md: kat.lua as written, a fix through :KatFix,
-- the preferred code action picked through vim.lsp.buf.code_action(), the file saved.
-- Run: nvim --headless -u NONE -i NONE -n -c "luafile drive.lua" (under `timeout`).
-- Writes a JSON report to $KAT_NVIM_OUT; exits 0, or 2 on any error (never hangs).
local out = os.getenv("KAT_NVIM_OUT")

local function report(data)
  local f = assert(io.open(out, "w"))
  f:write(vim.json.encode(data))
  f:close()
end

local ok, err = pcall(function()
  package.path = os.getenv("KAT_NVIM_DIR") .. "/?.lua;" .. package.path
  local kat = require("kat").setup({
    cmd = vim.json.decode(os.getenv("KAT_NVIM_CMD")),
    init_options = { samples = 3, testSamples = 1 },
  })
  vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("KAT_NVIM_FILE")))
  vim.cmd("setfiletype python")
  assert(vim.wait(30000, function() return #vim.lsp.buf_get_clients(0) > 0 end, 50), "no client attached")

  vim.cmd("KatFix median() returns the upper middle item for even-length lists; average the two middle items")
  assert(vim.wait(240000, function() return kat.last ~= nil end, 100), "the fix did not finish")

  local titles = {}
  vim.ui.select = function(items, opts, on_choice)
    for i, item in ipairs(items) do
      titles[i] = opts.format_item(item)
    end
    on_choice(items[1], 1)
  end
  vim.api.nvim_win_set_cursor(0, { 16, 0 })
  vim.lsp.buf.code_action()
  assert(vim.wait(30000, function() return vim.bo.modified end, 50), "the code action changed nothing")
  vim.cmd("write")
  report({ result = kat.last, titles = titles, lines = vim.api.nvim_buf_get_lines(0, 0, -1, false) })
end)

if not ok then
  report({ error = tostring(err) })
  vim.cmd("cquit 2")
end
vim.cmd("qa!")
