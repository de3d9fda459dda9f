-- wrk script: POST the bodies listed (one file path per line) in the file named by BENCH_BODIES, in turn.
local bodies = {}
for path in io.lines(os.getenv("BENCH_BODIES")) do
  local file = assert(io.open(path, "rb"))
  table.insert(bodies, file:read("*a"))
  file:close()
end
local index = 0
local headers = {["Content-Type"] = "application/json"}
request = function()
  index = index % #bodies + 1
  return wrk.format("POST", nil, headers, bodies[index])
end
