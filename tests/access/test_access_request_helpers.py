"""bearer_token (where a request's token comes from) and redact_query (what may be logged)."""

from __future__ import annotations

import pytest

from glm_relay.access import bearer_token
from glm_relay.web.redaction import redact_query

# --- bearer_token --------------------------------------------------------------------------------


def test_authorization_header_wins_over_query():
    assert bearer_token({"authorization": "Bearer from-header"}, {"access_token": "q"}) == (
        "from-header"
    )


def test_query_parameter_is_used_without_a_header():
    assert bearer_token({"accept": "text/event-stream"}, {"access_token": "from-query"}) == (
        "from-query"
    )


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(scheme):
    assert bearer_token({"authorization": f"{scheme} abc"}, {}) == "abc"


@pytest.mark.parametrize("name", ["Authorization", "AUTHORIZATION", "authorization"])
def test_header_name_is_case_insensitive(name):
    assert bearer_token({name: "Bearer abc"}, None) == "abc"


def test_surrounding_whitespace_is_ignored():
    assert bearer_token({"authorization": "  Bearer \t abc  "}, {}) == "abc"
    assert bearer_token({}, {"access_token": " abc "}) == "abc"


def test_an_anthropic_x_api_key_comes_after_authorization_and_before_the_query():
    both = {"X-Api-Key": " from-key ", "authorization": "Bearer from-header"}
    assert bearer_token(both, {"access_token": "q"}) == "from-header"
    assert bearer_token({"x-api-key": " from-key "}, {"access_token": "q"}) == "from-key"
    assert bearer_token({"x-api-key": "  "}, {"access_token": "q"}) == "q"  # empty: not a key
    basic = {"authorization": "Basic dXNlcjpwYXNz", "x-api-key": "k"}
    assert bearer_token(basic, {}) == "k"


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Token abc", "Bearer", "Bearer   ", "abc"])
def test_authorization_without_bearer_credentials_falls_back_to_query(value):
    assert bearer_token({"authorization": value}, {"access_token": "q"}) == "q"
    assert bearer_token({"authorization": value}, {}) is None


def test_bearer_credentials_are_returned_as_sent_for_the_verifier_to_judge():
    # Two comma-joined headers are not silently reduced to one of them.
    assert bearer_token({"authorization": "Bearer a, Bearer b"}, {}) == "a, Bearer b"


@pytest.mark.parametrize(
    ("headers", "query"),
    [({}, {}), (None, None), ({}, {"access_token": ""}), ({}, {"other": "x"}), ({}, None)],
)
def test_no_token_anywhere_is_none(headers, query):
    assert bearer_token(headers, query) is None


def test_only_the_access_token_parameter_is_read():
    assert bearer_token({}, {"token": "x", "jwt": "y", "Access_Token": "z"}) is None


# --- redact_query --------------------------------------------------------------------------------


def test_access_token_value_is_redacted_and_everything_else_kept_in_order():
    raw = "b=2&access_token=eyJhbGciOiJIUzI1NiJ9.e30.sig&a=1&stream=true"

    assert redact_query(raw) == "b=2&access_token=REDACTED&a=1&stream=true"


def test_other_params_keep_their_encoding_and_repeats():
    raw = "q=hello+world&x=%2F%3D&access_token=t1&q=again&access_token=t2&flag&empty="

    assert redact_query(raw) == (
        "q=hello+world&x=%2F%3D&access_token=REDACTED&q=again&access_token=REDACTED&flag&empty="
    )


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "id_token",
        "refresh_token",
        "api_key",
        "api-key",
        "apikey",
        "key",
        "secret",
        "client_secret",
        "password",
        "sig",
        "signature",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-Credential",
        "auth",
        "jwt",
        "code",
        "ACCESS_TOKEN",
        "access%5Ftoken",
        "accessToken",
        "idToken",
        "Authorization",
        "db.password",
        "mysecretvalue",
        "session_id",
    ],
)
def test_secret_looking_params_are_redacted(name):
    assert redact_query(f"a=1&{name}=s3cr3t&b=2") == f"a=1&{name}=REDACTED&b=2"


@pytest.mark.parametrize(
    "name",
    ["model", "stream", "monkey", "author", "keyword", "max_tokens", "tokens_per_day", "keys"],
)
def test_ordinary_params_are_kept(name):
    assert redact_query(f"{name}=value&x=1") == f"{name}=value&x=1"


def test_value_containing_equals_signs_is_redacted_whole():
    assert redact_query("access_token=a=b=c&x=1") == "access_token=REDACTED&x=1"


def test_secret_name_without_a_value_is_left_alone():
    assert redact_query("access_token&access_token=&x=1") == "access_token&access_token=&x=1"


def test_leading_question_mark_is_kept():
    assert redact_query("?access_token=t&x=1") == "?access_token=REDACTED&x=1"


@pytest.mark.parametrize("raw", ["", "x=1", "&&", "=v", "a=1&&b=2"])
def test_queries_without_secrets_are_unchanged(raw):
    assert redact_query(raw) == raw
