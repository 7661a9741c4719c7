"""How long the watcher waits for what (seconds). No imports: the CLI reads the defaults."""

POLL = 5.0  # a polled folder is listed this often (a bare --poll, and network shares)
RESCAN = 300.0  # everything is scanned this often for what events missed (--rescan)
SETTLE = 3.0  # a file unchanged this long, with no close event to wait for, is complete
UNCLOSED = 30.0  # on an inotify root, a file written to but never reported closed
GROUP_QUIET = 0.5  # a job starts once no file has become ready for this long,
GROUP_WAIT = 10.0  # or once its first file has waited this long
CHECK = 0.5  # pending files and the roots are looked at this often
HEARTBEAT = 10.0  # FACELABEL_HEARTBEAT_FILE is touched this often while the loop runs
