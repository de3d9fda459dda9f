-- wrk script: POST the bodies listed (one file path per line) in the file named by BENCH_BODIES, in turn;
-- thread n of BENCH_THREADS starts n/threads of the way through the list, so threads do not send the
-- same body at the same moment.
-- With BENCH_TOKENS (a file of JWTs, one per line) and BENCH_THREADS, each request also carries its own
-- bearer token: thread n uses lines n, n + threads, ... so no token is sent twice (the service refuses replays).
local bodies = {}
for path in io.lines(os.getenv("BENCH_BODIES")) do
  local file = assert(io.open(path, "rb"))
  table.insert(bodies, file:read("*a"))
  file:close()
end

local threads_started = 0
function setup(thread)
  thread:set("thread_index", threads_started)
  threads_started = threads_started + 1
end

local tokens = {}
local index, used = 0, 0
function init(args)
  local listing, threads = os.getenv("BENCH_TOKENS"), tonumber(os.getenv("BENCH_THREADS") or "1")
  index = math.floor(thread_index * #bodies / threads)
  if listing then
    local line_number = 0
    for token in io.lines(listing) do
      if line_number % threads == thread_index then table.insert(tokens, token) end
      line_number = line_number + 1
    end
  end
end

local headers = {["Content-Type"] = "application/json"}
request = function()
  index = index % #bodies + 1
  if #tokens > 0 then
    used = used % #tokens + 1
    headers["Authorization"] = "Bearer " .. tokens[used]
  end
  return wrk.format("POST", nil, headers, bodies[index])
end
