"""Enqueues N trivial tasks as fast as a client can: the peer's 'drop'."""
import sys

from tasks import trivial

url, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
prefix = sys.argv[4] if len(sys.argv) > 4 else "c"
for i in range(n):
    trivial.delay(url, root, "%s%05d" % (prefix, i), "someone@example.org")
