"""SMS: fitting a text into one or two segments, phone numbers, and each backend SMS_URL can name. The provider
adapter is tested against a fake provider on 127.0.0.1; nothing leaves this machine."""

import json
import runpy
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from communications import sms
from communications.sms import SmsError, fit_sms, normalise_phone, send_sms
from tests.test_architecture import ROOT

LINK = "https://l.example/x"
API_KEY = "test-key"


@pytest.fixture(autouse=True)
def empty_outbox():
    sms.outbox.clear()
    yield
    sms.outbox.clear()


# --- fit_sms: GSM-7 -----------------------------------------------------------------------------------------------


def test_a_short_text_and_its_link_are_sent_as_they_are():
    assert fit_sms("Your claim was approved.", LINK) == f"Your claim was approved. {LINK}"


def test_160_gsm_characters_fit_one_segment_and_161_do_not():
    assert fit_sms("a" * 160, max_segments=1) == "a" * 160
    assert fit_sms("a" * 161, max_segments=1) == "a" * 157 + "..."


def test_a_long_text_is_cut_at_a_word_with_an_ellipsis_and_the_link_kept_whole():
    text = "a" * 150 + " " + "b" * 150 + " " + "c" * 100

    # Two GSM-7 parts hold 2 × 153; the first two words and the link would need 324.
    assert fit_sms(text, LINK) == "a" * 150 + "... " + LINK


def test_a_sentence_is_cut_between_words():
    text = (
        "Your claim for 12 softeners at Baumarkt Nord was approved and 240 points were added to your account, "
        "which now holds 1,480 points: enough for the cordless drill you saved to your wish list last month."
    )

    # 137 characters of words and "... " + link fill the 160 of one segment.
    assert fit_sms(text, LINK, max_segments=1) == (
        "Your claim for 12 softeners at Baumarkt Nord was approved and 240 points were added to your account, "
        "which now holds 1,480 points: enough... " + LINK
    )


def test_a_text_without_a_space_that_fits_is_cut_inside_the_word():
    text = "a" * 150 + " " + "b" * 150

    # One segment: 160 - len("... " + LINK) = 137 characters of the first word.
    assert fit_sms(text, LINK, max_segments=1) == "a" * 137 + "... " + LINK


def test_gsm_extension_characters_count_twice():
    # € is an escape sequence in GSM-7: 78 of them and "..." make 159 of the 160 septets.
    assert fit_sms("€" * 100, max_segments=1) == "€" * 78 + "..."


def test_an_extension_character_never_straddles_two_parts():
    # 306 septets in all, but the € cannot be split after the first part's 152nd: it opens the second part.
    text = "a" * 152 + "€" + "a" * 152

    assert fit_sms(text) == "a" * 152 + "€" + "a" * 148 + "..."


# --- fit_sms: UCS-2 -----------------------------------------------------------------------------------------------


def test_persian_text_is_cut_to_two_ucs2_parts():
    text = " ".join(["امتیاز"] * 30)

    # 2 × 67 UCS-2 units: 16 words (111) and "… " + link (21) fit, 17 words do not.
    assert fit_sms(text, LINK) == " ".join(["امتیاز"] * 16) + "… " + LINK


def test_an_emoji_counts_as_two_ucs2_units():
    text = " ".join(["🎉"] * 40)

    # 23 emoji and 22 spaces (68 units) and "…" fill 69 of the 70 units of one segment.
    assert fit_sms(text, max_segments=1) == " ".join(["🎉"] * 23) + "…"


def test_an_emoji_never_straddles_two_parts():
    # 134 UCS-2 units in all, but the emoji cannot be split after the first part's 66th: it opens the second part.
    text = "ж" * 66 + "🎉" + "ж" * 66

    assert fit_sms(text) == "ж" * 66 + "🎉" + "ж" * 64 + "…"


def test_an_accent_is_never_cut_from_its_letter():
    text = "e\u0301" * 100  # é written as e and a combining accent, outside GSM-7

    # One segment holds 70 units: 34 letters with their accents and "…"; a 35th "e" would fit without its accent.
    assert fit_sms(text, max_segments=1) == "e\u0301" * 34 + "…"


def test_a_message_cut_to_nothing_but_its_link_is_the_link():
    assert fit_sms("a" * 500, "https://l.example/" + "x" * 140, max_segments=1) == "https://l.example/" + "x" * 140


def test_a_link_longer_than_the_segments_is_refused():
    with pytest.raises(ValueError, match="link"):
        fit_sms("Hello", "https://l.example/" + "x" * 300)


# --- normalise_phone ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("+49 30 1234567", "+49301234567"),
        ("0049 (0)30 123-45-67", "+49301234567"),
        ("+1 (415) 555.2671", "+14155552671"),
        ("49 30 1234567", "+49301234567"),
        (" +49\u00a0151\u00a012345678 ", "+4915112345678"),
        ("+۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷", "+989121234567"),
        ("＋４９３０１２３４５６７", "+49301234567"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_a_phone_number_is_written_in_e164(typed, e164):
    assert normalise_phone(typed) == e164


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "8 to 15 digits"),
        ("   ", "8 to 15 digits"),
        ("+49 30", "8 to 15 digits"),
        ("+1234567", "8 to 15 digits"),
        ("+1234567890123456", "8 to 15 digits"),
        ("030 1234567", "country code"),
        ("+0 30 1234567", "country code"),
        ("call me", "only digits"),
        ("+49 30 1234567 ext 8", "only digits"),
        ("++49301234567", "only digits"),
        ("49+301234567", "only digits"),
        ("1234567 " * 1000, "8 to 15 digits"),
    ],
)
def test_what_is_not_a_phone_number_is_refused_with_the_reason(typed, message):
    with pytest.raises(SmsError, match=message) as refusal:
        normalise_phone(typed)

    assert refusal.value.retryable is False


# --- send_sms and the local backends ------------------------------------------------------------------------------


def test_locmem_keeps_the_message_in_the_outbox(settings):
    settings.SMS_URL = "locmem://"
    settings.SMS_SENDER = "Loyalty"

    message_id = send_sms("+49 30 1234567", "Hello")

    assert [(m.id, m.to, m.sender, m.text) for m in sms.outbox] == [(message_id, "+49301234567", "Loyalty", "Hello")]


def test_console_prints_the_message(settings, capsys):
    settings.SMS_URL = "console://"
    settings.SMS_SENDER = "Loyalty"

    message_id = send_sms("+49 30 1234567", "Hello")

    printed = capsys.readouterr().out
    assert f"SMS {message_id} from Loyalty to +49301234567" in printed
    assert "\nHello\n" in printed


def test_file_appends_one_json_line_per_message_to_sms_jsonl(settings, tmp_path):
    settings.SMS_URL = f"file://{tmp_path}/sent"
    settings.SMS_SENDER = "Loyalty"

    first = send_sms("+49 30 1234567", "Hello")
    second = send_sms("+49 151 12345678", "Grüße 🎉")

    lines = (tmp_path / "sent" / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": first, "to": "+49301234567", "from": "Loyalty", "text": "Hello"},
        {"id": second, "to": "+4915112345678", "from": "Loyalty", "text": "Grüße 🎉"},
    ]
    assert first != second


def test_a_file_that_cannot_be_written_is_reported(settings, tmp_path):
    (tmp_path / "taken").write_text("not a directory")
    settings.SMS_URL = f"file://{tmp_path}/taken"

    with pytest.raises(SmsError, match="could not be written") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is False
    assert (tmp_path / "taken").read_text() == "not a directory"


def test_without_sms_url_nothing_is_sent(settings):
    settings.SMS_URL = ""

    with pytest.raises(SmsError, match=r"^SMS is not configured\.$") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is False


def test_an_unknown_scheme_is_refused(settings):
    settings.SMS_URL = "carrierpigeon://loft"

    with pytest.raises(SmsError, match="carrierpigeon") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is False


def test_a_bad_number_is_refused_and_nothing_is_sent(settings):
    settings.SMS_URL = "locmem://"

    with pytest.raises(SmsError, match="country code") as refusal:
        send_sms("030 1234567", "Hello")

    assert refusal.value.retryable is False
    assert sms.outbox == []


def test_an_empty_text_is_refused_and_nothing_is_sent(settings):
    settings.SMS_URL = "locmem://"

    with pytest.raises(SmsError, match="text") as refusal:
        send_sms("+49 30 1234567", " \n ")

    assert refusal.value.retryable is False
    assert sms.outbox == []


def _sms_url_with(monkeypatch, **environment) -> str:
    """SMS_URL as loyalty/settings.py computes it in this environment."""
    monkeypatch.delenv("SMS_URL", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "loyalty" / "settings.py"))["SMS_URL"]


def test_development_prints_messages_and_production_sends_none_until_configured(monkeypatch):
    assert _sms_url_with(monkeypatch, DEBUG="true") == "console://"
    assert _sms_url_with(monkeypatch, DEBUG="false") == ""


# --- the provider adapter, against a fake provider ----------------------------------------------------------------


class _FakeProvider(BaseHTTPRequestHandler):
    """Answers each POST with `server.answer` (status, JSON body), or 401 to a wrong API key; records each
    request in `server.requests`."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "authorization": self.headers["Authorization"], "json": body})
        if self.headers["Authorization"] == f"Bearer {API_KEY}":
            status, answer = self.server.answer
        else:
            status, answer = 401, {"error": {"message": "Invalid API key"}}
        payload = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        """Keep the test output quiet."""


@pytest.fixture
def provider(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeProvider)
    server.requests = []
    server.answer = (201, {"id": "msg-1"})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    settings.SMS_URL = f"http://{API_KEY}@127.0.0.1:{server.server_port}/v1/messages?timeout=1"
    settings.SMS_SENDER = "Loyalty"
    yield server
    server.shutdown()
    server.server_close()


def test_the_provider_gets_the_message_and_its_id_is_returned(provider):
    message_id = send_sms("+49 30 1234567", "Grüße 🎉")

    assert message_id == "msg-1"
    assert provider.requests == [
        {
            "path": "/v1/messages",
            "authorization": f"Bearer {API_KEY}",
            "json": {"to": "+49301234567", "from": "Loyalty", "text": "Grüße 🎉"},
        }
    ]


def test_a_provider_error_is_retried(provider):
    provider.answer = (500, {"error": {"message": "Internal error"}})

    with pytest.raises(SmsError, match="HTTP 500") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is True


def test_a_refused_message_is_not_retried_and_says_why(provider):
    provider.answer = (400, {"error": {"message": "'to' is not a mobile number"}})

    with pytest.raises(SmsError) as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is False
    assert refusal.value.message == "The SMS provider refused the message (HTTP 400): 'to' is not a mobile number"


def test_a_plain_text_error_is_reported_as_it_is(provider):
    provider.answer = (422, "sender not allowed")

    with pytest.raises(SmsError, match=r"\(HTTP 422\): sender not allowed$") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is False


def test_being_told_to_slow_down_is_retried(provider):
    provider.answer = (429, {"error": {"message": "Too many requests"}})

    with pytest.raises(SmsError, match="Too many requests") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is True


def test_a_bad_api_key_is_not_retried(provider, settings):
    settings.SMS_URL = settings.SMS_URL.replace(API_KEY, "wrong-key")

    with pytest.raises(SmsError, match=r"\(HTTP 401\): Invalid API key$") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is False
    assert provider.requests[0]["authorization"] == "Bearer wrong-key"


def test_an_answer_without_an_id_is_not_retried(provider):
    """The provider may have sent it: sending again could reach the member twice."""
    provider.answer = (200, {"status": "queued"})

    with pytest.raises(SmsError, match="no message id") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is False


@pytest.fixture
def silent_server():
    """Accepts connections (the kernel's backlog does) and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener.getsockname()[1]
    listener.close()


def test_a_provider_that_never_answers_times_out_and_is_retried(settings, silent_server):
    settings.SMS_URL = f"http://{API_KEY}@127.0.0.1:{silent_server}/v1/messages?timeout=0.2"

    with pytest.raises(SmsError, match="did not answer within 0.2 seconds") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is True


def test_a_provider_that_is_down_is_retried(settings):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        closed_port = listener.getsockname()[1]
    settings.SMS_URL = f"http://{API_KEY}@127.0.0.1:{closed_port}/v1/messages"

    with pytest.raises(SmsError, match="could not be reached") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is True


@pytest.mark.parametrize(
    "url",
    [
        "https://api.provider.example/v1/messages",
        "http://key@api.provider.example/v1/messages",
        "https://key@api.provider.example/v1/messages?timeout=soon",
        "https://key@api.provider.example:http/v1/messages",
    ],
)
def test_a_bad_provider_url_is_refused_before_anything_is_sent(settings, url):
    settings.SMS_URL = url

    with pytest.raises(SmsError, match="SMS_URL") as refusal:
        send_sms("+49 30 1234567", "Hello")

    assert refusal.value.retryable is False
