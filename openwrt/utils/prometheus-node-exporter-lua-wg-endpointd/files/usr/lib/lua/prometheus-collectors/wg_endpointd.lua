-- wg-endpointd collector for prometheus-node-exporter-lua.
--
-- The daemon writes its metrics in the Prometheus text format to one file
-- (UCI wg-endpointd, globals section, option metrics_file; by default
-- /var/run/wg-endpointd/wg_endpointd.prom). This collector reads that file at
-- each scrape and hands every wg_endpointd_* sample to the exporter's metric()
-- (openwrt/packages utils/prometheus-node-exporter-lua,
-- files/usr/bin/prometheus-node-exporter-lua): one metric(name, type) per
-- family, which prints its "# TYPE" line, then the returned function once per
-- sample with the labels and the value.
--
-- The exporter prints label values as they are given, without escaping them,
-- so they are handed on as the file has them: still escaped (\\, \" and \n).
-- Values are passed as the file's text, so no digit is lost. A sample's
-- timestamp is dropped (metric() has no place for one). _bucket, _sum and
-- _count samples of a histogram or summary become untyped samples of their own
-- name, since metric() prints one "# TYPE" per name. A missing or unreadable
-- file gives no samples; a line that does not parse is skipped.

local PREFIX = "wg_endpointd_"

local function default_path()
  local run_dir = os.getenv("WG_ENDPOINTD_RUN_DIR")
  if run_dir == nil or run_dir == "" then
    run_dir = "/var/run/wg-endpointd"
  end
  return run_dir .. "/wg_endpointd.prom"
end

local has_uci, uci = pcall(require, "uci")

local function metrics_path()
  local path
  if has_uci and uci then
    local ok = pcall(function()
      uci.cursor():foreach("wg-endpointd", "globals", function(s)
        if type(s.metrics_file) == "string" and s.metrics_file ~= "" then
          path = s.metrics_file
          return false
        end
      end)
    end)
    if not ok then
      path = nil
    end
  end
  return path or default_path()
end

-- Labels from `line` at `pos` (just after "{"): a table of name -> value as
-- written (escaped), and the position after "}"; nil when malformed.
local function parse_labels(line, pos)
  local labels = {}
  while true do
    pos = line:find("[^ \t]", pos) or (#line + 1)
    if line:sub(pos, pos) == "}" then
      return labels, pos + 1
    end
    local name_end, name = select(2, line:find("^([%a_][%w_]*)[ \t]*=[ \t]*\"", pos))
    if not name_end or labels[name] ~= nil then
      return nil
    end
    local i = name_end + 1
    while true do
      local c = line:sub(i, i)
      if c == "" then
        return nil
      elseif c == "\\" then
        if not line:sub(i + 1, i + 1):find("^[\\\"n]") then
          return nil
        end
        i = i + 2
      elseif c == "\"" then
        break
      else
        i = i + 1
      end
    end
    labels[name] = line:sub(name_end + 1, i - 1)
    pos = line:find("[^ \t]", i + 1) or (#line + 1)
    local sep = line:sub(pos, pos)
    if sep == "," then
      pos = pos + 1
    elseif sep ~= "}" then
      return nil
    end
  end
end

local SPECIAL = { ["NaN"] = true, ["+Inf"] = true, ["-Inf"] = true, ["Inf"] = true }

local function is_value(text)
  return SPECIAL[text] or (tonumber(text) ~= nil and not text:find("[xX]"))
end

-- One sample line: name, labels (or nil), value text; nil when malformed.
local function parse_sample(line)
  local name_end, name = select(2, line:find("^([%a_:][%w_:]*)"))
  if not name_end then
    return nil
  end
  local labels, pos = nil, name_end + 1
  if line:sub(pos, pos) == "{" then
    labels, pos = parse_labels(line, pos + 1)
    if not labels then
      return nil
    end
    if next(labels) == nil then
      labels = nil
    end
  end
  local value, stamp = line:sub(pos):match("^[ \t]+(%S+)[ \t]*(%S*)[ \t]*$")
  if not value or not is_value(value) or (stamp ~= "" and not stamp:find("^%-?%d+$")) then
    return nil
  end
  return name, labels, value
end

-- The type a sample is handed on with: its own TYPE line (counter, gauge,
-- untyped), a counter's foo_total under "# TYPE foo counter", else untyped.
local function sample_type(types, name)
  local own = types[name]
  if own == "counter" or own == "gauge" or own == "untyped" then
    return own
  end
  if own == nil and name:sub(-6) == "_total" and types[name:sub(1, -7)] == "counter" then
    return "counter"
  end
  return "untyped"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("*a")
  f:close()
  return text
end

local function scrape()
  local text = read_file(metrics_path())
  if not text then
    return
  end
  local types, order, samples = {}, {}, {}
  for line in text:gmatch("[^\n]+") do
    line = line:gsub("\r$", "")
    local tname, ttype = line:match("^#[ \t]+TYPE[ \t]+([%a_:][%w_:]*)[ \t]+(%a+)[ \t]*$")
    if tname then
      types[tname] = ttype
    elseif not line:find("^[ \t]*#") and line:find("%S") then
      local name, labels, value = parse_sample(line)
      if name and name:sub(1, #PREFIX) == PREFIX then
        if not samples[name] then
          samples[name] = {}
          order[#order + 1] = name
        end
        table.insert(samples[name], { labels, value })
      end
    end
  end
  for _, name in ipairs(order) do
    local out = metric(name, sample_type(types, name))
    for _, s in ipairs(samples[name]) do
      out(s[1], s[2])
    end
  end
end

return { scrape = scrape }
