"""Enqueues N trivial tasks as fast as a client can: the peer's 'drop'."""
import sys

from tasks import trivial

url, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    trivial.delay(url, root, "c%05d" % i, "someone@example.org")
