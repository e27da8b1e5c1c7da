"""/api/v1/openapi.json is an OpenAPI 3 document that describes every route of the API, and only those."""

import re

import pytest

PREFIX = "/api/v1"
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(client):
    """The served document, fetched without a token (it is public)."""
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def api_routes(app) -> dict[str, set[str]]:
    """Every route of the "api" blueprint as an OpenAPI path ({x} for <int:x>), with its methods."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != "api":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        routes.setdefault(path, set()).update(m.lower() for m in rule.methods - IGNORED_METHODS)
    return routes


def operations(document):
    """(path, method, operation) for every operation in the document."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch"}:
                yield path, method, operation


def test_document_is_openapi_3(document):
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["servers"] == [{"url": PREFIX}]


def test_every_api_route_is_documented_with_each_of_its_methods(app, document):
    routes = api_routes(app)
    assert len(routes) >= 10, routes
    missing = [
        f"{method.upper()} {path}"
        for path, methods in sorted(routes.items())
        for method in sorted(methods)
        if method not in document["paths"].get(path, {})
    ]
    assert missing == []


def test_every_documented_operation_exists(app, document):
    routes = api_routes(app)
    phantom = [
        f"{method.upper()} {path}" for path, method, _ in operations(document) if method not in routes.get(path, set())
    ]
    assert phantom == []


def test_path_parameters_are_declared_under_the_names_the_paths_use(document):
    for path, method, operation in operations(document):
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), f"{method.upper()} {path}"


def test_every_reference_resolves(document):
    schemas = document["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(document))
    assert found
    assert [r for r in found if r.removeprefix("#/components/schemas/") not in schemas] == []


def test_error_responses_are_documented_in_the_api_error_format(document):
    error = document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
    assert {"code", "message", "fields"} <= set(error)
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, f"{method.upper()} {path} {status}"


def test_every_write_with_a_json_body_documents_413_and_415(document):
    for path, method, operation in operations(document):
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(operation["responses"]), f"{method.upper()} {path}"
