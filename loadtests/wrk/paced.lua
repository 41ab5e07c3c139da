-- bench.py's wrk-paced (issue 19): each connection waits 1 ms after a response before it sends
-- its next request, so 100 connections offer well under what any server here answers and wrk's
-- threads are not short of CPU: the p99 is the server's latency below saturation, not how long
-- a saturated wrk took to read a response (docs/benchmarks.md, "Whose p99").
--   wrk -t2 -c100 -d10s --latency -s loadtests/wrk/paced.lua http://127.0.0.1:8000/
delay = function()
   return 1
end
