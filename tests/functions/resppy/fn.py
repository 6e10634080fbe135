# Answers the python3 response contract's cases (README "Writing
# functions"), chosen by the input.


def fn(data, headers):
    if data == "dict":
        return {"a": 1}
    if data == "list":
        return [1, "two"]
    if data == "tuple":
        return "created", 201, {"X-Custom": "yes"}
    if data == "tuple2":
        return "no such thing", 404
    if data == "jsontype":
        return '{"c":3}', 200, {"Content-Type": "application/json"}
    if data == "bytes":
        return b"\x00\x01\xff"
    if data == "none":
        return None
    if data == "raise":
        raise ValueError("bad input")
    if data == "hostile":
        return "still framed", 200, {"X-Evil": "a\r\nInjected: yes", "Content-Length": "1", "Connection": "close"}
    if data == "badstatus":
        return "up", 101
    if data == "badtuple":
        return "a", 200, {}, "extra"
    return "plain %s" % data
