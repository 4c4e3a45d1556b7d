-- courier.lua — wrk sends signed courier calls that bench_courier wrote
-- beforehand (an HMAC is not at hand in wrk's Lua): each thread reads its
-- own file, <prefix>.<thread>, one call a line ("token TAB X-Signature TAB
-- body"), and sends them in order, once each; a thread whose file is spent
-- stops. done() prints one line for bench_courier to read.
local threads = {}

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

function init(args)
    calls = {}
    for line in io.lines(args[1] .. "." .. id) do
        local token, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
        calls[#calls + 1] = wrk.format("POST", "/v1/courier/events", {
            ["Authorization"] = "Bearer " .. token,
            ["X-Signature"] = sig,
            ["Content-Type"] = "application/json",
        }, body)
    end
    n = 0
end

function request()
    n = n + 1
    if n > #calls then
        wrk.thread:stop()
        n = #calls
    end
    return calls[n]
end

function done(summary, latency, requests)
    io.write(string.format("BENCH requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d\n",
        summary.requests, summary.duration, summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        latency:percentile(50), latency:percentile(99)))
end
