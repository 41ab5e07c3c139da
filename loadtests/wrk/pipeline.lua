-- bench.py's wrk-pipelined (issue 19): every write carries 16 requests for the URL's path
-- (HTTP/1.1 pipelining); wrk counts each response.
--   wrk -t2 -c100 -d10s --latency -s loadtests/wrk/pipeline.lua http://127.0.0.1:8000/
local depth = 16

init = function(args)
   local requests = {}
   for i = 1, depth do
      requests[i] = wrk.format()
   end
   pipelined = table.concat(requests)
end

request = function()
   return pipelined
end
