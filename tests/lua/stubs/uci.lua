-- Test stand-in for libuci-lua (openwrt/uci lua/uci.c): cursor():foreach(config,
-- type, fn) calls fn with each section table (".type", ".name", options) of
-- that type, in order, and stops when fn returns false. The configuration is
-- the Lua table that the file named by UCI_STUB returns:
-- { ["wg-endpointd"] = { { [".type"] = "globals", metrics_file = "..." } } }.
-- UCI_STUB=error makes cursor() raise, as a broken libuci would.

local M = {}

function M.cursor()
  local source = os.getenv("UCI_STUB")
  if source == "error" then
    error("uci stub: cursor failed")
  end
  local configs = dofile(source)
  return {
    foreach = function(_, config, stype, fn)
      local found = false
      for _, section in ipairs(configs[config] or {}) do
        if stype == nil or section[".type"] == stype then
          found = true
          if fn(section) == false then
            break
          end
        end
      end
      return found
    end,
  }
end

return M
