"""Text messages (SMS): send one, fit a text into one or two segments, write a phone number in E.164.

`send_sms` sends through the backend SMS_URL names by its scheme (read like django-environ reads EMAIL_URL):

- ``console://`` prints each message (the development default);
- ``file:///path/to/dir`` appends one JSON line per message ({id, to, from, text}) to ``dir/sms.jsonl``;
- ``locmem://`` appends each message to ``outbox`` in this module (tests; empty it between tests);
- ``https://API_KEY@api.provider.example/v1/messages`` posts it to an SMS provider's HTTP API (below);
  ``?timeout=SECONDS`` bounds each call (default 5). Plain ``http://`` is accepted for 127.0.0.1 and localhost
  only (a local fake provider in tests, a relay on the same machine), so the key never travels in clear text.

An empty SMS_URL (the production default) means SMS is not configured: `send_sms` refuses, not retryable.

The provider API, in the style of common SMS providers:
    POST <url without key and query>  Authorization: Bearer API_KEY  Content-Type: application/json
         {"to": "+4930…", "from": SMS_SENDER, "text": "…"}
    2xx  {"id": "…"}                                  → the message id
    4xx  {"error": {"message": "…"}}, {"error": "…"}, {"message": "…"} or plain text → not retryable, with that text
    5xx, 408, 429 (those two 4xx mean "later"), a timeout, no connection → retryable
"""

import json
import sys
import unicodedata
import uuid
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit, urlunsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

from django.conf import settings
from django.utils.translation import gettext as _


class SmsError(Exception):
    """A message was not sent. `retryable`: the same message may go through later (timeouts, provider trouble);
    otherwise sending it again cannot help (bad number, refused by the provider, not configured)."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class Sms:
    """A message as the local backends record it."""

    id: str
    to: str
    sender: str
    text: str


outbox: list[Sms] = []  # what locmem:// sent, like django.core.mail.outbox


def send_sms(to: str, text: str) -> str:
    """Send `text` to the phone number `to` through SMS_URL's backend; return the provider's message id."""
    if not settings.SMS_URL:
        raise SmsError(_("SMS is not configured."), retryable=False)
    url = _parse(settings.SMS_URL)
    number = normalise_phone(to)
    if not text.strip():
        raise SmsError(_("An SMS needs a text."), retryable=False)
    return _BACKENDS[url.scheme](url, number, settings.SMS_SENDER, text)


# --- phone numbers ------------------------------------------------------------------------------------------------

_PHONE_SEPARATORS = frozenset("-./()[]")


def normalise_phone(text: str) -> str:
    """`text` as an E.164 number ("+49301234567"), or SmsError (not retryable) saying why it is not one.

    The rule: spaces, dashes, dots and brackets are dropped, and so is a trunk "(0)" ("+49 (0)30 …"); a leading
    "00" becomes "+"; what is left is an optional leading "+" and 8 to 15 digits starting with the country code
    (never 0, so a national number such as "030 1234567" is refused). Digits of any script count ("۰۱۲", "０１２").
    """
    compact = unicodedata.normalize("NFKC", text).replace("(0)", "")
    compact = "".join(
        str(unicodedata.decimal(char)) if char.isdecimal() else char
        for char in compact
        if not (char.isspace() or char in _PHONE_SEPARATORS)
    )
    digits = "+" + compact[2:] if compact.startswith("00") else compact
    digits = digits.removeprefix("+")
    if digits and not digits.isdigit():
        raise SmsError(
            _("A phone number may contain only digits, spaces, dashes, dots, brackets and a leading +."),
            retryable=False,
        )
    if not 8 <= len(digits) <= 15:
        raise SmsError(_("A phone number has 8 to 15 digits, its country code included."), retryable=False)
    if digits.startswith("0"):
        raise SmsError(_("Write the phone number with its country code, e.g. +49 30 1234567."), retryable=False)
    return "+" + digits


# --- segments -----------------------------------------------------------------------------------------------------

# GSM 03.38: the default alphabet (without the escape character) and the extension table, whose characters take
# an escape and the character: two septets.
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[]~|€\f")
# (characters in one segment, characters in each part of a longer message, which loses some to its header)
_GSM7_SIZES = (160, 153)
_UCS2_SIZES = (70, 67)


def fit_sms(text: str, link: str = "", *, max_segments: int = 2) -> str:
    """`text`, then `link`, in at most `max_segments` segments. A text too long is cut after a word (inside one
    only when no whole word fits) and ends in an ellipsis; the link is kept whole at the end. The ellipsis is
    "..." in a GSM-7 message, because "…" is not in GSM-7 and would halve the room (UCS-2)."""
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1.")
    text, link = text.strip(), link.strip()
    whole = f"{text} {link}" if text and link else text or link
    if _segment_count(whole) <= max_segments:
        return whole
    if _segment_count(link) > max_segments:
        raise ValueError(f"The link alone needs more than {max_segments} SMS segments: {link}")
    ellipsis = "..." if _is_gsm7(whole) else "…"
    suffix = f"{ellipsis} {link}" if link else ellipsis

    def fits(cut: int) -> bool:
        return _segment_count(_cut(text, cut) + suffix) <= max_segments

    words_end = [i for i, char in enumerate(text) if char.isspace()]
    cut = _last_that_fits(words_end, fits) or _last_that_fits(
        [i for i in range(1, len(text)) if _can_cut_before(text, i)], fits
    )
    kept = _cut(text, cut)
    return kept + suffix if kept else link


def _cut(text: str, end: int) -> str:
    """The text up to `end`, without the spaces and punctuation an ellipsis would follow awkwardly."""
    return text[:end].rstrip().rstrip(",;:-–—").rstrip()


def _can_cut_before(text: str, i: int) -> bool:
    """False inside a character as people see it: before an accent or variation selector, around a joiner."""
    return not (unicodedata.combining(text[i]) or text[i] in "\u200d\ufe0e\ufe0f" or text[i - 1] == "\u200d")


def _last_that_fits(cuts: list[int], fits) -> int:
    """The last of the ascending `cuts` that fits (a longer text never fits better), or 0: a binary search."""
    low, high = 0, len(cuts)
    while low < high:
        middle = (low + high) // 2
        if fits(cuts[middle]):
            low = middle + 1
        else:
            high = middle
    return cuts[low - 1] if low else 0


def _is_gsm7(text: str) -> bool:
    return all(char in _GSM7 or char in _GSM7_EXTENSION for char in text)


def _segment_count(text: str) -> int:
    """How many segments `text` is sent in. A character never straddles two parts: an extension character's two
    septets, or an emoji's two UTF-16 units (a surrogate pair), open the next part when the current one is full."""
    if _is_gsm7(text):
        sizes, weights = _GSM7_SIZES, [2 if char in _GSM7_EXTENSION else 1 for char in text]
    else:
        sizes, weights = _UCS2_SIZES, [len(char.encode("utf-16-le")) // 2 for char in text]
    single, part = sizes
    if sum(weights) <= single:
        return 1
    parts, used = 1, 0
    for weight in weights:
        if used + weight > part:
            parts, used = parts + 1, 0
        used += weight
    return parts


# --- backends -----------------------------------------------------------------------------------------------------


def _parse(sms_url: str) -> SplitResult:
    """SMS_URL split into its parts, or SmsError (not retryable) when it names no backend we have."""
    try:
        url = urlsplit(sms_url)
        url.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as error:
        raise SmsError(_("SMS_URL is not a valid address: %(error)s") % {"error": error}, retryable=False) from error
    if url.scheme not in _BACKENDS:
        raise SmsError(
            _("SMS_URL names an unknown SMS backend “%(scheme)s”; known: %(known)s.")
            % {"scheme": url.scheme, "known": ", ".join(sorted(_BACKENDS))},
            retryable=False,
        )
    return url


def _recorded(to: str, sender: str, text: str) -> Sms:
    return Sms(id=uuid.uuid4().hex, to=to, sender=sender, text=text)


def _console(url: SplitResult, to: str, sender: str, text: str) -> str:
    message = _recorded(to, sender, text)
    print(f"SMS {message.id} from {sender} to {to}:\n{text}\n{'-' * 79}", file=sys.stdout, flush=True)
    return message.id


def _file(url: SplitResult, to: str, sender: str, text: str) -> str:
    message = _recorded(to, sender, text)
    line = json.dumps({"id": message.id, "to": to, "from": sender, "text": text}, ensure_ascii=False)
    try:
        directory = Path(unquote(url.path))
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "sms.jsonl", "a", encoding="utf-8") as sms_file:
            sms_file.write(line + "\n")
    except OSError as error:
        raise SmsError(_("The SMS could not be written: %(error)s") % {"error": error}, retryable=False) from error
    return message.id


def _locmem(url: SplitResult, to: str, sender: str, text: str) -> str:
    message = _recorded(to, sender, text)
    outbox.append(message)
    return message.id


_DEFAULT_TIMEOUT = 5.0  # seconds; SMS_URL's ?timeout= overrides it
_LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_RETRYABLE_STATUSES = frozenset({408, 429})  # request timeout, slow down: like 5xx, worth trying again later
_MAX_ANSWER_BYTES = 64 * 1024


class _NoRedirects(HTTPRedirectHandler):
    """A redirect would resend the API key, or drop the message; report it as the provider's answer instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = build_opener(_NoRedirects)


def _provider(url: SplitResult, to: str, sender: str, text: str) -> str:
    api_key = unquote(url.username or "")
    if not api_key:
        raise SmsError(_("SMS_URL names no API key: https://API_KEY@host/path."), retryable=False)
    if url.scheme == "http" and url.hostname not in _LOCAL_HOSTS:
        raise SmsError(_("SMS_URL must use https:// (http:// only to this machine)."), retryable=False)
    try:
        timeout = float(parse_qs(url.query).get("timeout", [_DEFAULT_TIMEOUT])[-1])
    except ValueError:
        timeout = 0.0
    if not 0 < timeout < 3600:
        raise SmsError(_("SMS_URL's timeout must be a number of seconds."), retryable=False)
    endpoint = urlunsplit((url.scheme, url.netloc.rpartition("@")[2], url.path, "", ""))
    request = Request(
        endpoint,
        data=json.dumps({"to": to, "from": sender, "text": text}).encode(),
        headers={
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
        method="POST",
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            answer = response.read(_MAX_ANSWER_BYTES)
    except HTTPError as error:
        raise SmsError(
            _("The SMS provider refused the message (HTTP %(status)s): %(detail)s")
            % {"status": error.code, "detail": _error_text(error)},
            retryable=error.code >= 500 or error.code in _RETRYABLE_STATUSES,
        ) from error
    except (TimeoutError, URLError, OSError, HTTPException) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, TimeoutError):
            message = _("The SMS provider did not answer within %(seconds)s seconds.") % {"seconds": timeout}
        else:
            message = _("The SMS provider could not be reached: %(reason)s") % {"reason": reason}
        raise SmsError(message, retryable=True) from error
    return _message_id(answer)


def _message_id(answer: bytes) -> str:
    """The id in the provider's answer. Without one the message may still have gone out, so this is not
    retryable: sending it again could reach the member twice."""
    try:
        message_id = json.loads(answer).get("id")
    except (ValueError, AttributeError):
        message_id = None
    if not isinstance(message_id, str | int) or isinstance(message_id, bool) or str(message_id) == "":
        raise SmsError(
            _("The SMS provider's answer has no message id: %(answer)s")
            % {"answer": answer[:200].decode(errors="replace")},
            retryable=False,
        )
    return str(message_id)


def _error_text(error: HTTPError) -> str:
    """The provider's reason for an error answer: its JSON error message, else its text, else the HTTP reason."""
    try:
        body = error.read(_MAX_ANSWER_BYTES).decode(errors="replace").strip()
    except (OSError, HTTPException):
        body = ""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        detail = answer.get("error") or answer.get("message") or answer.get("detail")
        if isinstance(detail, dict):
            detail = detail.get("message")
        if isinstance(detail, str) and detail.strip():
            return detail.strip()[:200]
    return body[:200] or str(error.reason)


_BACKENDS = {
    "console": _console,
    "file": _file,
    "locmem": _locmem,
    "https": _provider,
    "http": _provider,
}
