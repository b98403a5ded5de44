-- kat-lsp for Neovim 0.7+, no plugin needed: save as ~/.config/nvim/lua/kat.lua and put
-- require("kat").setup() in init.lua. docs/howto/neovim.md explains it; the headless
-- test (tests/lsp/test_neovim.py) runs exactly this file.
local M = { clients = {}, last = nil }

M.config = {
  name = "kat-lsp",
  cmd = { "kat-lsp", "serve" },
  -- Any kat-lsp setting, camelCase or snake_case (docs/reference/settings.md).
  init_options = { samples = 4 },
}

-- The project folder of a buffer: the nearest folder with .git, else the cwd.
function M.root(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local git = vim.fn.finddir(".git", vim.fn.fnamemodify(name, ":p:h") .. ";")
  if git ~= "" then
    return vim.fn.fnamemodify(git, ":p:h:h")
  end
  return vim.fn.getcwd()
end

-- Start (once per project) and attach the server to a buffer; returns the client id.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local root = M.root(bufnr)
  local id = M.clients[root]
  if id == nil or vim.lsp.get_client_by_id(id) == nil then
    id = vim.lsp.start_client(vim.tbl_extend("force", M.config, { root_dir = root }))
    M.clients[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

-- Fix an issue: kat.lsp.fixIssue on the buffer's project. The candidates then show up
-- as code actions (vim.lsp.buf.code_action()) in the files they change.
function M.fix(issue, bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = vim.lsp.get_client_by_id(M.attach(bufnr))
  local params = { command = "kat.lsp.fixIssue", arguments = { { issue = issue } } }
  vim.notify("KAT: fixing; progress is in :lua print(vim.inspect(vim.lsp.util.get_progress_messages()))")
  client.request("workspace/executeCommand", params, function(err, result)
    if err then
      vim.notify("KAT: " .. err.message, vim.log.levels.ERROR)
      return
    end
    M.last = result
    local first = result.candidates[1]
    vim.notify(string.format("KAT run %s: %d candidate(s)%s", result.runId, #result.candidates,
      first and ("; best: " .. first.title .. ". Pick one: :lua vim.lsp.buf.code_action()") or ""))
  end, bufnr)
end

-- Stop the newest run of this session.
function M.cancel(bufnr)
  local client = vim.lsp.get_client_by_id(M.attach(bufnr or 0))
  client.request("workspace/executeCommand", { command = "kat.lsp.listRuns" }, function(_, runs)
    for _, run in ipairs(runs or {}) do
      if run.status == "running" then
        client.request("workspace/executeCommand", { command = "kat.lsp.cancel", arguments = { { runId = run.runId } } })
        return
      end
    end
  end)
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
  vim.api.nvim_create_user_command("KatFix", function(o) M.fix(o.args) end, { nargs = "+" })
  vim.api.nvim_create_user_command("KatCancel", function() M.cancel() end, {})
  vim.api.nvim_create_autocmd("FileType", {
    pattern = M.config.filetypes or { "python", "javascript", "typescript", "go", "rust", "java", "c", "cpp" },
    callback = function(args) M.attach(args.buf) end,
  })
  return M
end

return M
