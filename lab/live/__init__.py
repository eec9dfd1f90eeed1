"""Live training for the app: trainer worker processes, their messages, picture pacing, the session facade.

pool.py      WorkerPool: trainer processes shared by every session of a server, one record per run
worker.py    a worker: runs as actors, slices fair between sessions, snapshots sent as numpy arrays
pacing.py    PicturePacer and SpeedLimit: pure policies with an injected clock
messages.py  Command, Picture, Reply
jobs.py      what a page may run on a model in its worker (weights, log_prob, inverse solves...)
session.py   LiveSession: what pages use
"""
