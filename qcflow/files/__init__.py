"""Attachments: files people add to a record (a report, a case step, a corrective action, an MDT discussion).

A file is accepted by what its bytes are, never by its name (content: images, PDF, office documents); images are
decoded and re-encoded so that nothing of the original's metadata survives (EXIF GPS, camera serial, author);
the bytes are kept outside the web root under random names behind one small storage interface (storage:
the filesystem by default); the database keeps what the pages show (models). Who may add or read a file is the
owning record's rule: the owning domain's views check it and call `services`, which audit every read.

models · content (what a file is, re-encoding, thumbnails) · storage · services · jobs (orphans swept).
"""
