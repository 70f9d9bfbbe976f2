#!/usr/bin/env python3
"""Instructions per request of a bench server under callgrind (docs/performance.md).

usage: callgrind_requests.py BINARY STORE_URL ROUTE N OUT
e.g.   callgrind_requests.py target/release/bench postgres://postgres@127.0.0.1/test /read 2000 /tmp/cg.read
Starts BINARY under valgrind (instrumentation off), makes 200 sessions with /new, warms up
with N/4 requests of ROUTE, switches instrumentation on, sends N requests over one
keep-alive connection, dumps, and prints Ir/request.
"""
import os, re, socket, subprocess, sys, time

binary, store_url, route, n, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
env = dict(os.environ, PORT=str(port), WORKERS="1", SESSION_SECRET="a benchmark secret of at least thirty-two bytes",
           SESSION_STORE_URL=store_url, RUST_LOG="off")
proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                         binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.time() + 120
while True:
    try:
        c = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        if time.time() > deadline: sys.exit("server did not start")
        time.sleep(0.2)

buf = b""
def request(path, cookie=None):
    global buf
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n"
    c.sendall(head.encode())
    while b"\r\n\r\n" not in buf:
        buf += c.recv(65536)
    header, buf = buf.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", header).group(1))
    while len(buf) < length:
        buf += c.recv(65536)
    body, buf = buf[:length], buf[length:]
    m = re.search(rb"(?i)set-cookie: *([^;\r\n]+)", header)
    return header, body, (m.group(1).decode() if m else None)

cookies = []
for _ in range(200):
    _, _, cookie = request("/new")
    if cookie: cookies.append(cookie)
def run(count):
    for i in range(count):
        # `/new` goes without a cookie, as `cargo xtask bench` sends it.
        request(route, cookies[i % len(cookies)] if cookies and route != "/new" else None)
run(n // 4)
subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, stdout=subprocess.DEVNULL)
run(n)
subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, stdout=subprocess.DEVNULL)
time.sleep(1)
proc.terminate(); proc.wait(timeout=60)
dumps = [f for f in os.listdir(os.path.dirname(out) or ".") if f.startswith(os.path.basename(out))]
total = 0
for f in dumps:
    p = os.path.join(os.path.dirname(out) or ".", f)
    for line in open(p, errors="replace"):
        if line.startswith("summary:") or line.startswith("totals:"):
            total = max(total, int(line.split()[1])); 
print(f"{os.path.basename(binary)} {route} {store_url.split('@')[-1]}: {total / n:,.0f} Ir/request over {n} requests ({len(cookies)} sessions)")
