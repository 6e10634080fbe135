import base64, io, json, os, stat, struct, sys, zipfile
root = sys.argv[1]
def put(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    if isinstance(data, str): data = data.encode()
    open(os.path.join(d, name), "wb").write(data)

def mkzip(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content, kind in entries:
            info = zipfile.ZipInfo(name)
            if kind == "link":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
            else:
                info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_STORED if kind != "file" else zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return b.getvalue()

py = mkzip([("fn.py", "def fn(input, headers):\n    return input\n", "file")])
# ---- archive
put("archive", "valid_python", py)
put("archive", "valid_nested", mkzip([("src/", "", "dir"), ("src/index.js", "module.exports=(r,s)=>s.send(r.body)\n", "file"), ("package.json", "{}", "file")]))
put("archive", "dotdot", mkzip([("../evil.txt", "x", "file")]))
put("archive", "absolute", mkzip([("/tmp/evil.txt", "x", "file")]))
put("archive", "symlink_inside", mkzip([("a.txt", "x", "file"), ("link", "a.txt", "link")]))
put("archive", "symlink_outside", mkzip([("link", "../../etc/passwd", "link")]))
put("archive", "symlink_chain", mkzip([("d/", "", "dir"), ("d/up", "..", "link"), ("esc", "d/up/..", "link")]))
put("archive", "write_through_symlink", mkzip([("dir", ".", "link"), ("dir/x.txt", "x", "file")]))
put("archive", "truncated", py[: len(py) // 2])
put("archive", "empty", b"")
put("archive", "not_a_zip", b"hello, world\n")
# ---- upload_request / management_api
b64 = base64.b64encode(py).decode()
up = {"name": "echo", "env": "python3", "threads": 1, "zip": b64}
put("upload_request", "upload", json.dumps(up))
put("upload_request", "upload_limits", json.dumps(dict(up, envs=["A=1", "B_2=x"], memory_mb=64, cpus=0.5, egress=False)))
put("upload_request", "upload_url", json.dumps({"name": "echo", "env": "nodejs", "threads": 2, "url": "http://127.0.0.1:1/x.zip", "subfolder_path": "fn"}))
put("upload_request", "delete", '{"name":"echo"}')
put("upload_request", "bad_threads", json.dumps(dict(up, threads=18446744073709551615)))
put("upload_request", "bad_env", json.dumps(dict(up, envs=["1A=x", "NOEQ"])))
put("upload_request", "bad_base64", json.dumps(dict(up, zip="@@@=")))
put("upload_request", "async_policy", json.dumps(dict(up, **{"async": {"retries": 3, "backoff_ms": 250}})))
put("upload_request", "bad_async", json.dumps(dict(up, **{"async": {"retries": "x", "backoff": 1}})))
put("upload_request", "triggers", json.dumps(dict(up, triggers=[{"type": "mqtt", "topic": "sensors/+/temp", "reply_topic": "out/temp", "qos": 1}, {"type": "mqtt", "topic": "logs/#", "qos": 0}])))
put("upload_request", "bad_triggers", json.dumps(dict(up, triggers=[{"type": "mqtt", "topic": "a/#/b+", "reply_topic": "out/#", "qos": 2}, {"type": "x"}])))
put("upload_request", "not_object", "[1,2,3]")
put("upload_request", "broken", '{"name": "ec')
api = "management_api"
put(api, "upload", "POST /upload\n" + json.dumps(up))
put(api, "upload_nodejs", "POST /upload\n" + json.dumps({"name": "web", "env": "nodejs", "threads": 2, "zip": base64.b64encode(mkzip([("index.js", "module.exports=(r,s)=>s.send('ok')\n", "file")])).decode()}))
put(api, "upload_bad_zip", "POST /upload\n" + json.dumps(dict(up, zip=base64.b64encode(b"PK\x03\x04junk").decode())))
put(api, "upload_escape", "POST /upload\n" + json.dumps(dict(up, zip=base64.b64encode(mkzip([("../x", "x", "file")])).decode())))
put(api, "delete", 'POST /delete\n{"name":"echo"}')
put(api, "list", "GET /list\n")
put(api, "logs", "GET /logs?name=echo\n")
put(api, "logs_all", "GET /logs\n")
put(api, "wipe", "POST /wipe\n")
put(api, "wrong_method", "PUT /upload\n{}")
put(api, "unknown", "GET /nothing%20here?x=%zz\n")
# ---- http_request
put("http_request", "get", "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
put("http_request", "post", "POST /echo?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Custom: a\r\n\r\nhello")
put("http_request", "pipelined", "GET /echo HTTP/1.1\r\nHost: x\r\n\r\nPOST /fail HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET /big HTTP/1.1\r\n\r\n")
put("http_request", "chunked", "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
put("http_request", "async", "POST /echo HTTP/1.1\r\nX-tinyFaaS-Async: true\r\nContent-Length: 2\r\n\r\nhi")
put("http_request", "call_result", "GET /calls/" + "a" * 32 + " HTTP/1.1\r\nHost: x\r\n\r\n")
put("http_request", "call_unknown", "GET /calls/" + "0" * 31 + "g?x=1 HTTP/1.1\r\n\r\n")
put("http_request", "http10", "GET /busy HTTP/1.0\r\n\r\n")
put("http_request", "method", "DELETE /echo HTTP/1.1\r\n\r\n")
put("http_request", "bad_name", "GET /../etc HTTP/1.1\r\n\r\n")
put("http_request", "too_big", "POST /echo HTTP/1.1\r\nContent-Length: 999999\r\n\r\nx")
put("http_request", "garbage", "\x00\x01 not http\r\n\r\n")
put("http_request", "expect", "POST /slow HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")
# ---- coap_request
SEP = b"\xff\xfe\xfd"
def coap(t, code, mid, token=b"", options=(), payload=b""):
    out = bytes([0x40 | (t << 4) | len(token), code]) + struct.pack(">H", mid) + token
    last = 0
    for num, val in sorted(options, key=lambda o: o[0]):
        if isinstance(val, str): val = val.encode()
        d = num - last; last = num; l = len(val)
        def nib(x):
            if x < 13: return x, b""
            if x < 269: return 13, bytes([x - 13])
            return 14, struct.pack(">H", x - 269)
        dn, de = nib(d); ln, le = nib(l)
        out += bytes([(dn << 4) | ln]) + de + le + val
    if payload: out += b"\xff" + payload
    return out
def uint(v):
    if v == 0: return b""
    return v.to_bytes((v.bit_length() + 7) // 8, "big")
CON, NON = 0, 1
GET, POST = 1, 2
URI = 11; BLOCK1 = 27; BLOCK2 = 23; NORESP = 258; SIZE1 = 60
put("coap_request", "get", coap(CON, GET, 1, b"\x01", [(URI, "echo")]))
put("coap_request", "post", coap(CON, POST, 2, b"ab", [(URI, "echo")], b"payload"))
put("coap_request", "non", coap(NON, POST, 3, b"", [(URI, "fail")], b"x"))
put("coap_request", "big_block2", coap(CON, GET, 4, b"t", [(URI, "big")]) + SEP + coap(CON, GET, 5, b"t", [(URI, "big"), (BLOCK2, uint((1 << 4) | 2))]))
put("coap_request", "block1_upload", coap(CON, POST, 6, b"u", [(URI, "echo"), (BLOCK1, uint((0 << 4) | 0x8 | 0))], b"a" * 16) + SEP + coap(CON, POST, 7, b"u", [(URI, "echo"), (BLOCK1, uint((1 << 4) | 0))], b"b" * 5))
put("coap_request", "duplicate", coap(CON, GET, 8, b"d", [(URI, "echo")]) + SEP + coap(CON, GET, 8, b"d", [(URI, "echo")]))
put("coap_request", "no_response", coap(NON, POST, 9, b"", [(URI, "busy"), (NORESP, uint(2))], b"x"))
put("coap_request", "unknown", coap(CON, GET, 10, b"", [(URI, "nothing")]))
put("coap_request", "wellknown", coap(CON, GET, 11, b"", [(URI, ".well-known"), (URI, "core")]))
put("coap_request", "delete", coap(CON, 4, 12, b"", [(URI, "echo")]))
put("coap_request", "ping", coap(CON, 0, 13))
put("coap_request", "truncated", coap(CON, POST, 14, b"abcd", [(URI, "echo")], b"x")[:7])
# ---- grpc_request: HTTP/2 frames with HPACK literals (no Huffman, no indexing)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
def h2frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload
def hpack(headers):
    out = b""
    for name, value in headers:
        out += b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()
    return out
def grpc_message(name, data):
    msg = b"\x0a" + bytes([len(name)]) + name + b"\x12" + bytes([len(data)]) + data
    return b"\x00" + struct.pack(">I", len(msg)) + msg
def grpc_call(stream, name, data, path="/openfogstack.tinyfaas.tinyfaas.TinyFaaS/Request", ctype="application/grpc",
              body=None):
    heads = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
             ("content-type", ctype), ("te", "trailers"), ("x-custom", "a")]
    return (h2frame(1, 0x4, stream, hpack(heads)) +
            h2frame(0, 0x1, stream, grpc_message(name, data) if body is None else body))
SETTINGS = h2frame(4, 0, 0)
g = "grpc_request"
put(g, "echo", PREFACE + SETTINGS + grpc_call(1, b"echo", b"hello"))
put(g, "two_streams", PREFACE + SETTINGS + grpc_call(1, b"echo", b"a") + grpc_call(3, b"fail", b"b"))
put(g, "unknown_method", PREFACE + SETTINGS + grpc_call(1, b"echo", b"x", path="/x.Y/Z"))
put(g, "wrong_type", PREFACE + SETTINGS + grpc_call(1, b"echo", b"x", ctype="text/plain"))
put(g, "compressed", PREFACE + SETTINGS + grpc_call(1, b"echo", b"x", body=b"\x01" + grpc_message(b"echo", b"x")[1:]))
put(g, "truncated_message", PREFACE + SETTINGS + grpc_call(1, b"echo", b"x", body=grpc_message(b"echo", b"xy")[:-1]))
put(g, "not_utf8", PREFACE + SETTINGS + grpc_call(1, b"echo", b"\xff\xfe"))
put(g, "too_big", PREFACE + SETTINGS + grpc_call(1, b"big", b"y" * 200, body=b"\x00\x00\x00\x20\x00" + b"z" * 5000))
put(g, "rst", PREFACE + SETTINGS + h2frame(1, 0x4, 1, hpack([(":method", "POST"), (":path", "/p")])) +
    h2frame(3, 0, 1, struct.pack(">I", 8)))
put(g, "ping_goaway", PREFACE + SETTINGS + h2frame(6, 0, 0, b"12345678") + h2frame(7, 0, 0, struct.pack(">II", 0, 0)))
put(g, "http1", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
