"""The API's one error shape, as every test that looks at an error checks it:
{"type", "detail", "code", "errors": [{"code", "detail", "attr"}]} for every 4xx and 503."""

ERROR_KEYS = {"type", "detail", "code", "errors"}
ITEM_KEYS = {"code", "detail", "attr"}


def error_shape(response, status: int, code: str | None = None) -> dict:
    """The body of an error answer, checked against the one shape; `code` is the top-level code."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert isinstance(body, dict) and set(body) == ERROR_KEYS, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert isinstance(body["code"], str) and body["code"], body
    assert body["errors"] and all(set(error) == ITEM_KEYS for error in body["errors"]), body
    assert all(isinstance(error["code"], str) and error["code"] for error in body["errors"]), body
    assert all(isinstance(error["detail"], str) and error["detail"] for error in body["errors"]), body
    if body["type"] == "validation_error":
        assert status == 400 and body["code"] == "invalid", body
        assert all(error["attr"] is None or isinstance(error["attr"], str) for error in body["errors"]), body
    else:
        assert body["type"] == ("client_error" if status < 500 else "server_error"), body
        assert body["errors"] == [{"code": body["code"], "detail": body["detail"], "attr": None}], body
    if code is not None:
        assert body["code"] == code, body
    return body


def field_errors(response) -> dict[str | None, list[tuple[str, str]]]:
    """A validation error's field errors: {attr: [(code, message), ...]}."""
    errors: dict[str | None, list[tuple[str, str]]] = {}
    for error in error_shape(response, 400, "invalid")["errors"]:
        errors.setdefault(error["attr"], []).append((error["code"], error["detail"]))
    return errors
