#!/usr/bin/env python3
"""Requests a second and CPU per request of a bench server, of the store server it uses
and of wrk, laid out on the CPUs as `cargo xtask bench` lays them (docs/performance.md).

usage: cpu_per_request.py BINARY STORE_URL ROUTE SECONDS [--store-pid PID] [--perf OUT]
e.g.   cpu_per_request.py target/release/bench redis://127.0.0.1:6390 /incr 5 --store-pid 7294
Starts BINARY (WORKERS=1) pinned to CPU 0, makes 1,000 sessions with /new (none for /new),
warms up for a second, then runs wrk (1 thread, 32 connections, a random session's cookie
per request) pinned to CPU 1 for SECONDS. The store server, if any, should already be
pinned to CPU 1 (`taskset -c 1 redis-server ...`). With --perf, records the server with
`perf record --call-graph dwarf` meanwhile.
"""
import argparse, http.client, os, re, socket, subprocess, time

ap = argparse.ArgumentParser()
ap.add_argument("binary"); ap.add_argument("store_url"); ap.add_argument("route")
ap.add_argument("seconds", type=int)
ap.add_argument("--store-pid", type=int); ap.add_argument("--perf")
a = ap.parse_args()

def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
env = dict(os.environ, PORT=str(port), WORKERS="1", RUST_LOG="off", SESSION_STORE_URL=a.store_url,
           SESSION_SECRET="a benchmark secret of at least thirty-two bytes")
server = subprocess.Popen(["taskset", "-c", "0", a.binary], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(400):
    try:
        socket.create_connection(("127.0.0.1", port)).close(); break
    except OSError:
        time.sleep(0.05)
cookies = []
if a.route != "/new":
    for _ in range(1000):
        c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/new")
        r = c.getresponse(); r.read(); cookies.append(r.getheader("set-cookie").split(";")[0]); c.close()
script = f"/tmp/cpu_per_request.{os.getpid()}.lua"
with open(script, "w") as f:
    f.write("local cookies = {\n" + "".join(f'  "{c}",\n' for c in cookies) + "}\n"
            "request = function()\n  if #cookies == 0 then return wrk.format(\"GET\") end\n"
            "  return wrk.format(\"GET\", nil, { Cookie = cookies[math.random(#cookies)] })\nend\n")
url = f"http://127.0.0.1:{port}{a.route}"
wrk = ["taskset", "-c", "1", "wrk", "-t1", "-c32", "-s", script]
subprocess.run(wrk + ["-d1s", url], capture_output=True)
perf = None
if a.perf:
    perf = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,16384", "-F", "500", "-o", a.perf,
                             "-p", str(server.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
server0 = cpu_seconds(server.pid); store0 = cpu_seconds(a.store_pid) if a.store_pid else 0.0
wrk0 = os.times()
out = subprocess.run(wrk + [f"-d{a.seconds}s", url], capture_output=True, text=True).stdout
wrk1 = os.times()
server1 = cpu_seconds(server.pid); store1 = cpu_seconds(a.store_pid) if a.store_pid else 0.0
if perf:
    perf.send_signal(2); perf.wait()
server.terminate(); server.wait(); os.unlink(script)
n = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
wrk_cpu = (wrk1.children_user + wrk1.children_system) - (wrk0.children_user + wrk0.children_system)
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(f"{os.path.basename(a.binary)} {a.route}: {rps:.0f} req/s; CPU µs per request: "
      f"server {1e6 * (server1 - server0) / n:.1f}, store {1e6 * (store1 - store0) / n:.1f}, "
      f"wrk {1e6 * wrk_cpu / n:.1f}; errors {errors.group(1) if errors else 0}")
