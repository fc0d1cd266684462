-- wrk script for bench/registration.py: every request is a new, valid POST /v1/participants.
--
--   wrk -t T -c C -d S --latency -s bench/registration.lua URL -- <first index> <regencies> <token>
--
-- Each thread numbers its requests; index = first + thread * 10^8 + n is spread in mixed radix over
-- serial (1..9999), district (01..99), regency (the known regencies given, 4 digits each, comma
-- separated) and birth date (1962-01-01 + up to 9,999 days), so no two indexes make the same NIK,
-- and the name carries the index, so no identity hash repeats (no possible-duplicate flags).
-- The rules are those of services/participants/identity.py: NIK = region (6) + birth date DDMMYY
-- (DD + 40 for women) + serial; KK = region (6) + registration date DDMMYY + serial; the village
-- code's province and regency are known. Same rows as bench/people.py in shape.
-- done() prints one JSON line (prefix "WRKJSON ") with the counts and latency percentiles (us).

local threads = {}
local counter = 0
local first = 0
local me = 0
local regencies = {}
local token = ""

local fields = { "kuliner", "agribisnis", "dagang", "fashion_menjahit", "jasa", "otomotif", "kerajinan_tangan" }
local consent = '{"purpose":"PENA","given_on":"2026-01-05","recorded_by":"bench"}'

function setup(thread)
  thread:set("thread_no", #threads)
  table.insert(threads, thread)
end

function init(args)
  first = tonumber(args[1])
  for code in string.gmatch(args[2], "%d+") do
    table.insert(regencies, code)
  end
  token = args[3]
  -- the global thread_no is set by setup() before init() runs in the thread's own Lua state
  me = tonumber(thread_no) or 0
  counter = 0
  statuses = {}
end

-- days since 1970-01-01 -> y, m, d (H. Hinnant's civil_from_days)
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local BIRTH_BASE = -2922 -- 1962-01-01

function request()
  local i = first + me * 100000000 + counter
  counter = counter + 1
  local serial = i % 9999 + 1
  local q = math.floor(i / 9999)
  local district = q % 99 + 1
  q = math.floor(q / 99)
  local regency = regencies[q % #regencies + 1]
  q = math.floor(q / #regencies)
  local y, m, d = civil(BIRTH_BASE + q % 10000)
  local female = i % 2 == 1
  local region = string.format("%s%02d", regency, district)
  local nik = string.format("%s%02d%02d%02d%04d", region, female and d + 40 or d, m, y % 100, serial)
  -- one family card per person (one active member per KPM): issued on the birth date, unique like the NIK
  local kk = string.format("%s%02d%02d%02d%04d", region, d, m, y % 100, serial)
  local body = string.format(
    '{"nik":"%s","kk_number":"%s","full_name":"Peserta W%d","birth_date":"%04d-%02d-%02d","sex":"%s",'
      .. '"region_code":"%s%04d","business_field":"%s","consent":%s}',
    nik, kk, i, y, m, d, female and "F" or "M", region, serial, fields[i % #fields + 1], consent
  )
  return wrk.format("POST", "/v1/participants", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local by_status = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do
      by_status[code] = (by_status[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(by_status) do
    table.insert(parts, string.format('"%d":%d', code, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ",")
  ))
end
