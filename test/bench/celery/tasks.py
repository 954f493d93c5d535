"""The peer of hopper's trivial-job benchmark: the same work as a Celery task on Redis.

Each task fetches a small file over HTTP, zips it at level 6 and writes an
email as an .eml file, as hopper's `trivial` recipe does.
"""
import os
import urllib.request
import zipfile
from email.message import EmailMessage

from celery import Celery

app = Celery("tasks", broker=os.environ["BENCH_BROKER"])
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=4,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)


def _write_atomic(path, data):
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.rename(path + ".part", path)


@app.task
def trivial(url, root, job_id, email):
    data = urllib.request.urlopen(url, timeout=30).read()
    out = os.path.join(root, "outputs", job_id + ".zip")
    with zipfile.ZipFile(out + ".part", "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        z.writestr("data.csv", data)
    os.rename(out + ".part", out)
    msg = EmailMessage()
    msg["From"] = "hopper@localhost"
    msg["To"] = email
    msg["Subject"] = "Your trivial request is ready"
    msg.set_content("Download: file://" + out + "\n")
    _write_atomic(os.path.join(root, "outbox", job_id + ".eml"), bytes(msg))
