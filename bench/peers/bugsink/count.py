"""Prints "<digested events> <issues>" of one Bugsink project, read-only.

Usage: count.py DB_SQLITE3 PROJECT_ID (the --stored-cmd of
bench/peers/bugsink/run). Digested, not received: an event counts once
snappea has grouped it into an issue.
"""
import sqlite3
import sys

db, project = sys.argv[1], int(sys.argv[2])
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
row = conn.execute(
    "SELECT digested_event_count, (SELECT count(*) FROM issues_issue WHERE project_id = p.id)"
    " FROM projects_project p WHERE id = ?",
    (project,),
).fetchone()
print(*(row or (0, 0)))
