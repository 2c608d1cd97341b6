# Sourced by the load and cluster scripts. free_port prints a loopback TCP
# port nothing listens on, picked from the band just below the kernel's
# ephemeral range (as tests/support/process.cc does): a port inside that
# range can be taken by any outgoing connection between the pick and the
# server's bind, which is how fixed or random high ports used to collide.
free_port() {
  python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
first = max(1024, low - 12000)
ports = list(range(first, low))
random.shuffle(ports)
for port in ports[:500]:
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("free_port: no free port below the ephemeral range")
PY
}
