"""Input bounds of the admin console, in one place (the OpenAPI schema and the importer share them)."""

from __future__ import annotations

from datetime import date

from bundle.contracts import MAX_TEXT_CHARS

QUESTION_MAX_CHARS = 200  # standard and similar questions (serving indexes up to MAX_TEXT_CHARS)
ANSWER_MAX_CHARS = 5000
CATEGORY_MAX_CHARS = 64
INTENT_MAX_CHARS = 64
SIMILAR_MAX = 100  # similar questions per FAQ (the wire contract allows 200)
PAGE_SIZE_MAX = 100
SEARCH_MAX_CHARS = 100
# The conversations' customer filter: the shop's id of a customer, as long as the widget may send it (``user_id``
# of api.schemas.ChatRequest) and visitors.external_user_id holds
CUSTOMER_ID_MAX_CHARS = 128
TEMPLATE_VARIANTS_MAX = 20
TEMPLATE_VARIANT_MAX_CHARS = 1000
XLSX_MAX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024  # zip-bomb guard for .xlsx uploads
# The import's multipart form: one file part (its bytes spool to disk, the upload limit bounds them), and
# only a few small text fields (held in memory; the import reads none) -- Starlette allows 1000 of 1 MB each.
UPLOAD_MAX_FILES = 1
UPLOAD_MAX_FIELDS = 8
UPLOAD_MAX_FIELD_BYTES = 1024
ANALYTICS_MAX_DAYS = 366
# Day filters (conversations, analytics): far from date.min / date.max, whose neighbours do not exist
DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2999, 12, 31)
UNANSWERED_MAX_DAYS = 90

assert QUESTION_MAX_CHARS <= MAX_TEXT_CHARS
