-- Test harness: the parts of prometheus-node-exporter-lua that a collector
-- relies on, written after openwrt/packages utils/prometheus-node-exporter-lua
-- files/usr/bin/prometheus-node-exporter-lua (its command-line mode):
--   * collectors are modules "prometheus-collectors.<name>" returning
--     { scrape = function }, loaded with require() when the exporter starts;
--   * metric(name, mtype, labels, value) prints "# TYPE name mtype" at once and
--     returns a function(labels, value) that prints one sample; given a value,
--     it also prints that sample;
--   * a sample is name{k="v",...} value, label values printed as given (the
--     exporter does not escape them), labels in pairs() order;
--   * each scrape runs under pcall: an error prints to stderr and sets
--     node_scrape_collector_success{collector=...} to 0.
-- Differences: no HTTP (uhttpd) mode, os.clock instead of socket.gettime, and
-- the collectors come from the command line, not from ls.
--
-- Usage: lua5.1 exporter.lua LUA_DIR COLLECTOR...
-- LUA_DIR holds prometheus-collectors/<name>.lua. With UCI_STUB set, the stub
-- uci module next to this file is found by require("uci").

local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = arg[1] .. "/?.lua;" .. package.path
if os.getenv("UCI_STUB") then
  package.path = here .. "/stubs/?.lua;" .. package.path
end

function get_contents(filename)
  local f = io.open(filename, "rb")
  local contents = ""
  if f then
    contents = f:read("*a")
    f:close()
  end
  return contents
end

function print_metric(name, labels, value)
  local label_string = ""
  if labels then
    for label, v in pairs(labels) do
      label_string = label_string .. label .. '="' .. v .. '",'
    end
    label_string = "{" .. string.sub(label_string, 1, -2) .. "}"
  end
  output(string.format("%s%s %s", name, label_string, value))
end

function metric(name, mtype, labels, value)
  output("# TYPE " .. name .. " " .. mtype)
  local outputter = function(l, v)
    print_metric(name, l, v)
  end
  if value then
    outputter(labels, value)
  end
  return outputter
end

local function timed_scrape(collector)
  local start = os.clock()
  local success = 1
  local ok, err = pcall(collector.scrape)
  if not ok then
    success = 0
    io.stderr:write(tostring(err))
  end
  return os.clock() - start, success
end

output = print

local names, mods = {}, {}
for i = 2, #arg do
  names[#names + 1] = arg[i]
  mods[arg[i]] = require("prometheus-collectors." .. arg[i])
end

local duration = metric("node_scrape_collector_duration_seconds", "gauge")
local success = metric("node_scrape_collector_success", "gauge")
for _, name in ipairs(names) do
  local d, s = timed_scrape(mods[name])
  duration({ collector = name }, d)
  success({ collector = name }, s)
end
