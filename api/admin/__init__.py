"""Admin console services (FAQ, import/export, index, templates, playground, conversations, mining, analytics).

Routes live in ``api/routes/admin.py`` and stay thin; everything here is plain functions over a SQLAlchemy
session or the inference client, so it is testable without HTTP.
"""
