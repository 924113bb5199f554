-- wrk script for bench/xcap.sh: each request goes to the resource-lists
-- document of one of USERS users, picked at random.
--
--   wrk -s bench/xcap_wrk.lua URL -- get USERS
--   wrk -s bench/xcap_wrk.lua URL -- put USERS BODYFILE   (PUT with If-Match: *)

local mode, users, body

function init(args)
    mode = args[1]
    users = tonumber(args[2])
    if args[3] then
        local file = assert(io.open(args[3], "rb"))
        body = file:read("*a")
        file:close()
    end
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
    local path = "/xcap-root/resource-lists/users/sip:user" .. math.random(0, users - 1)
        .. "@example.com/index"
    if mode == "put" then
        return wrk.format("PUT", path, {["Content-Type"] = "application/resource-lists+xml",
                                        ["If-Match"] = "*"}, body)
    end
    return wrk.format("GET", path)
end
