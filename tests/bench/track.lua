-- track.lua — wrk's side of bench_track: POST /v1/track with a random pair
-- of the data set of base_data.sql and track_data.sql (request i: RQ-B-<i, 7 digits>, national ID
-- 1<i, 8 digits><Luhn digit>), and a share of look-ups that match nothing
-- (half an unknown request number, half another holder's national ID).
-- Each call comes through a trusted proxy for a random client address, as
-- citizens' calls do, so the per-address limit of failed look-ups holds
-- them no more than it would hold citizens.
--   wrk -t2 -c64 -d15s --latency -s track.lua URL -- REQUESTS MISS_PERCENT
-- done() prints one line: "track: ok N not_found N other N bad N
-- requests N seconds S p50_us N p99_us N errors N"; a 200 whose body is not
-- the delivery's answer counts as bad; errors are the sockets' (connect,
-- read, write, time-out), not the 404s that wrk counts as errors too.

local n, miss = 1000000, 10
local threads = {}

local function national_id(i)
    local stem = string.format("1%08d", i)
    local sum = 0
    for k = 1, 9 do
        local d = stem:byte(k) - 48
        if k % 2 == 1 then -- the 1st, 3rd, ... digit from the left is doubled
            d = d * 2
            if d > 9 then d = d - 9 end
        end
        sum = sum + d
    end
    return stem .. tostring((10 - sum % 10) % 10)
end

function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    n = tonumber(args[1]) or n
    miss = tonumber(args[2]) or miss
    math.randomseed(os.time() * 100 + id)
    ok, not_found, other, bad = 0, 0, 0, 0
end

function request()
    local i = math.random(1, n)
    local no, nid = string.format("RQ-B-%07d", i), national_id(i)
    local r = math.random(1, 100)
    if r <= miss then
        if r % 2 == 0 then
            no = string.format("RQ-X-%07d", i)
        else
            nid = national_id(i % n + 1)
        end
    end
    local headers = {
        ["Content-Type"] = "application/json",
        ["X-Forwarded-For"] = string.format("198.18.%d.%d", math.random(0, 255), math.random(1, 254)),
    }
    return wrk.format("POST", "/v1/track", headers,
                      '{"request_no":"' .. no .. '","national_id":"' .. nid .. '"}')
end

function response(status, headers, body)
    if status == 200 then
        if body:find('"status":"out_for_delivery"', 1, true) and body:find('"timeline":[', 1, true) then
            ok = ok + 1
        else
            bad = bad + 1
        end
    elseif status == 404 then
        not_found = not_found + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local t = { ok = 0, not_found = 0, other = 0, bad = 0 }
    for _, thread in ipairs(threads) do
        for k, _ in pairs(t) do
            t[k] = t[k] + thread:get(k)
        end
    end
    local e = summary.errors
    io.write(string.format("track: ok %d not_found %d other %d bad %d requests %d seconds %.3f"
                           .. " p50_us %d p99_us %d errors %d\n",
                           t.ok, t.not_found, t.other, t.bad, summary.requests,
                           summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
                           e.connect + e.read + e.write + e.timeout))
end
