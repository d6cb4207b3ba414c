def problem(response, status: int, code: str) -> dict:
    """The problem document of `response`, checked: its status, code, type and content type."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"], body["type"]) == (status, code, f"urn:partner-loyalty:problem:{code}")
    return body
