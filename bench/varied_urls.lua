-- wrk script: request the paths listed in a file (one a line), in the file's order.
--
--     wrk ... -s bench/varied_urls.lua URL -- PATHS_FILE THREADS
--
-- Each thread starts at its own share of the list and wraps around at its
-- end, so the threads do not send the same URLs in step and a per-URL cache
-- sees each URL again only after the whole list has gone by.

local next_offset = 0

function setup(thread)
  -- Runs in the main Lua state, once per thread, before that thread's init.
  thread:set("offset", next_offset)
  next_offset = next_offset + 1
end

local paths = {}
local position = 1

function init(args)
  for line in assert(io.open(args[1])):lines() do
    paths[#paths + 1] = line
  end
  local threads = tonumber(args[2]) or 1
  position = math.floor(offset * #paths / threads) + 1
end

function request()
  local path = paths[position]
  position = position % #paths + 1
  return wrk.format(nil, path)
end
