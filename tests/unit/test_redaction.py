"""Secret redaction: the registry, the credential patterns, the logging filter, registration on load."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantmini.cli.main import install_redaction
from quantmini.config import load_config
from quantmini.config.redaction import (
    RedactingFilter,
    SecretRegistry,
    redact,
    redacted_traceback,
    register_secret,
    reset_secrets,
)

API_KEY = "qmApiKey-7Hc2Vb9xQe41"
S3_ID = "AKIAQMUNITTEST000042"
S3_SECRET = "qm/Secret+Unit0123456789abcdefghijklmnop"


def test_a_registered_value_is_hidden_everywhere_it_occurs() -> None:
    registry = SecretRegistry()
    registry.add(API_KEY)
    text = f"first {API_KEY}, then again:{API_KEY}."
    assert registry.redact(text) == "first ***, then again:***."


def test_the_url_encoded_form_of_a_secret_is_hidden_too() -> None:
    registry = SecretRegistry()
    registry.add(S3_SECRET)
    # Hand-encoded: "/" -> %2F, "+" -> %2B.
    encoded = "qm%2FSecret%2BUnit0123456789abcdefghijklmnop"
    assert registry.redact(f"raw {S3_SECRET} quoted {encoded}") == "raw *** quoted ***"


def test_a_secret_containing_another_is_hidden_whole() -> None:
    registry = SecretRegistry()
    registry.add("abcd1234")
    registry.add("abcd1234XYZW")
    assert registry.redact("a abcd1234XYZW b abcd1234 c") == "a *** b *** c"


def test_values_shorter_than_four_characters_are_not_registered() -> None:
    registry = SecretRegistry()
    for value in ("", "a", "ab", "abc", None):
        registry.add(value)
    text = "a cab abc hat"
    assert registry.redact(text) == text
    registry.add("wxyz")
    assert registry.redact("awxyzb") == "a***b"


def test_reset_forgets_registered_values() -> None:
    register_secret(API_KEY)
    assert redact(API_KEY) == "***"
    reset_secrets()
    assert redact(API_KEY) == API_KEY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET https://api.example/v3/x?limit=5&apiKey=UNREGISTERED123&order=asc",
            "GET https://api.example/v3/x?limit=5&apiKey=***&order=asc",
        ),
        ("see ?apikey=lower-case-key", "see ?apikey=***"),
        ('{"api_key": "inJsonBody99"}', '{"api_key": "***"}'),
        ("Authorization: Bearer tok.en-123_abc", "Authorization: Bearer ***"),
        (
            # A header as botocore's debug log prints it.
            "'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAUNREGISTERED0001/20261201/us-east-1/s3/"
            "aws4_request, SignedHeaders=host;x-amz-date, Signature=84b05939300a4f92d7afaddbb334d4f8'",
            "'Authorization': b'AWS4-HMAC-SHA256 Credential=***/20261201/us-east-1/s3/"
            "aws4_request, SignedHeaders=host;x-amz-date, Signature=***'",
        ),
        (
            "https://h/b/k?X-Amz-Credential=AKIAUNREGISTERED0002%2F20261201%2Fus-east-1&X-Amz-Signature=9f0e1d",
            "https://h/b/k?X-Amz-Credential=***%2F20261201%2Fus-east-1&X-Amz-Signature=***",
        ),
        ("DEBUG botocore.auth: Signature:\n84b05939300a4f92", "DEBUG botocore.auth: Signature:\n***"),
        (
            "<Error><Code>InvalidAccessKeyId</Code><AWSAccessKeyId>AKIAX9</AWSAccessKeyId></Error>",
            "<Error><Code>InvalidAccessKeyId</Code><AWSAccessKeyId>***</AWSAccessKeyId></Error>",
        ),
        (
            "nothing secret: apiKeys are set in credentials.toml",
            "nothing secret: apiKeys are set in credentials.toml",
        ),
    ],
)
def test_credential_patterns_are_hidden_without_registration(text: str, expected: str) -> None:
    assert SecretRegistry().redact(text) == expected


def test_environment_secrets_are_hidden_from_the_first_redaction_on() -> None:
    registry = SecretRegistry()
    environ = {
        "POLYGON_API_KEY": API_KEY,
        "QUANTMINI_CREDENTIALS_S3_ACCESS_KEY_ID": S3_ID,
        "HOME": "/home/qm",
    }
    registry.add_environment(environ)
    environ["POLYGON_S3_SECRET_ACCESS_KEY"] = S3_SECRET  # set after registration: not seen
    assert API_KEY in registry
    assert registry.redact(f"{API_KEY} {S3_ID} /home/qm {S3_SECRET}") == f"*** *** /home/qm {S3_SECRET}"


def test_a_cleared_registry_forgets_pending_environments() -> None:
    registry = SecretRegistry()
    registry.add_environment({"POLYGON_API_KEY": API_KEY})
    registry.clear()
    assert registry.redact(API_KEY) == API_KEY


def _record(msg: str, args: tuple[object, ...] = (), exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("botocore.endpoint", logging.DEBUG, __file__, 1, msg, args, exc_info)


def test_filter_renders_the_args_then_redacts() -> None:
    registry = SecretRegistry()
    registry.add(API_KEY)
    record = _record("key %s sent %d times (%r)", (API_KEY, 3, {"id": S3_ID}))
    assert RedactingFilter(registry).filter(record) is True
    # S3_ID is not registered here; only the registered key is hidden.
    assert record.getMessage() == f"key *** sent 3 times ({{'id': '{S3_ID}'}})"
    assert record.args == ()


def test_filter_redacts_the_traceback_and_the_stack() -> None:
    registry = SecretRegistry()
    registry.add(API_KEY)
    try:
        raise ValueError(f"vendor said: bad key {API_KEY}")
    except ValueError as exc:
        record = _record("request failed", exc=exc)
    record.stack_info = f"Stack (most recent call last):\n  frame holding {API_KEY}"
    RedactingFilter(registry).filter(record)
    assert record.exc_info is None
    assert record.exc_text is not None
    assert "Traceback (most recent call last)" in record.exc_text
    assert record.exc_text.endswith("ValueError: vendor said: bad key ***")
    assert record.stack_info == "Stack (most recent call last):\n  frame holding ***"
    formatted = logging.Formatter("%(message)s").format(record)
    assert API_KEY not in formatted
    assert "ValueError: vendor said: bad key ***" in formatted


def test_filter_keeps_a_record_whose_arguments_do_not_fit_its_format() -> None:
    registry = SecretRegistry()
    registry.add(API_KEY)
    record = _record("two %s %s", (API_KEY,))
    assert RedactingFilter(registry).filter(record) is True
    assert record.getMessage() == "two %s %s ('***',)"


@pytest.fixture
def isolated_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger tree of our own (not the root): ``parent`` with a real stream handler."""
    stream = io.StringIO()
    parent = logging.getLogger("qm_redaction_test")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    parent.addHandler(handler)
    parent.setLevel(logging.DEBUG)
    parent.propagate = False
    yield parent, stream
    parent.removeHandler(handler)


def test_installed_filter_covers_records_propagated_from_other_loggers(
    isolated_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    parent, stream = isolated_logger
    install_redaction(parent)
    install_redaction(parent)  # idempotent: one filter per handler
    assert [type(f) for f in parent.handlers[0].filters] == [RedactingFilter]
    register_secret(S3_ID)
    child = logging.getLogger("qm_redaction_test.botocore.endpoint")
    child.debug("Sending http request: headers={'Authorization': %r}", f"Credential={S3_ID}/2026")
    child.debug("echo %s", S3_ID)
    assert stream.getvalue().splitlines() == [
        "DEBUG qm_redaction_test.botocore.endpoint: Sending http request: "
        "headers={'Authorization': 'Credential=***/2026'}",
        "DEBUG qm_redaction_test.botocore.endpoint: echo ***",
    ]


def test_loading_settings_registers_every_secret_it_reads(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    credentials = cfg / "credentials.toml"
    credentials.write_text(f"[credentials]\ns3_secret_access_key = '{S3_SECRET}'\n", encoding="utf-8")
    credentials.chmod(0o600)
    overridden = "qmOverriddenAlias-55"
    environ = {
        "POLYGON_API_KEY": overridden,  # loses to the QUANTMINI_ name, but is still a secret
        "QUANTMINI_CREDENTIALS_API_KEY": API_KEY,
        "POLYGON_S3_ACCESS_KEY_ID": S3_ID,
    }
    assert redact(f"{API_KEY} {overridden} {S3_ID} {S3_SECRET}") != "*** *** *** ***"
    load_config(environ=environ, config_dir=cfg)
    assert redact(f"{API_KEY} {overridden} {S3_ID} {S3_SECRET}") == "*** *** *** ***"


def test_redacted_traceback_of_a_chained_error() -> None:
    register_secret(API_KEY)
    try:
        try:
            raise KeyError(API_KEY)
        except KeyError as inner:
            raise RuntimeError(f"wrapped {API_KEY}") from inner
    except RuntimeError as exc:
        text = redacted_traceback(exc)
    assert API_KEY not in text
    assert "KeyError: '***'" in text
    assert text.rstrip().endswith("RuntimeError: wrapped ***")
