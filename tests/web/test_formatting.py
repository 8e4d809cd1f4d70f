"""Messages on pages: names quoted Keras' way show as code, and nothing typed in becomes markup."""

from __future__ import annotations

from app.web.formatting import user_message


def test_quoted_names_show_as_code():
    text = "Invalid value received for `units`. Expected an integer from 1 to 100000. Received: units=0"
    assert str(user_message(text)) == ("Invalid value received for <code>units</code>. Expected an integer from "
                                       "1 to 100000. Received: units=0")


def test_what_was_typed_in_stays_text():
    assert str(user_message("Received: name='<b>`x`</b>'")) == \
        "Received: name=&#39;&lt;b&gt;<code>x</code>&lt;/b&gt;&#39;"
    assert str(user_message("a lone ` stays")) == "a lone ` stays"
