"""The chat path's FAQ / template read models follow writes made by another API instance (a change stamp)."""

from __future__ import annotations

from api.admin import kb
from api.admin.templates import update_template


async def test_a_change_by_another_instance_is_reloaded_and_no_change_is_not(app_client) -> None:  # type: ignore[no-untyped-def]
    app, _ = app_client
    services = app.state.services
    assert services.reload_if_changed() is False  # loaded at startup, nothing changed since

    with services.session_factory() as db:  # another instance's admin writes (they reload only their own)
        kb.delete_faq(db, "faq-001", "someone-elsewhere")
    assert services.catalog.get("faq-001") is not None
    assert services.reload_if_changed() is True
    assert services.catalog.get("faq-001") is None
    assert services.reload_if_changed() is False

    new = ["您好，我是小客。"]
    with services.session_factory() as db:
        update_template(db, "intent:greeting", new, "someone-elsewhere")
    assert services.templates.variants("intent:greeting") != new
    assert services.reload_if_changed() is True
    assert services.templates.variants("intent:greeting") == new
