# Sourced by the load, cluster and test-server scripts. free_ports N prints N
# distinct loopback TCP ports nothing listens on (space-separated), picked
# from the band just below the kernel's ephemeral range (as
# tests/support/process.cc does): a port inside that range can be taken by
# any outgoing connection between the pick and the server's bind, which is
# how fixed or random high ports used to collide. free_port prints one.
# Read them with `read -r a b <<<"$(free_ports 2)"`, so a failed pick stops a
# `set -e` script instead of leaving a variable empty.
free_ports() {
  python3 - "${1:-1}" <<'PY'
import random, socket, sys
wanted = int(sys.argv[1])
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
first = max(1024, low - 12000)
ports = list(range(first, low))
random.shuffle(ports)
held = []  # probes stay bound until all are chosen, so the picks differ
for port in ports[:2000]:
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    held.append(s)
    if len(held) == wanted:
        break
if len(held) < wanted:
    raise SystemExit("free_ports: not enough free ports below the ephemeral range")
print(" ".join(str(s.getsockname()[1]) for s in held))
for s in held:
    s.close()
PY
}
free_port() { free_ports 1; }
