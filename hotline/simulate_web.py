"""`hotline simulate web "TEXT"`: the secure web form, posted as a browser would post it.

GETs `/help`, reads the form's token, POSTs the message with it and prints the receipt, so a
newcomer can see a web incident paged like an SMS without opening a browser.
"""

from __future__ import annotations

import re
import sys
import urllib.error
import urllib.parse
import urllib.request

TOKEN = re.compile(r'name="token" value="([^"]+)"')
RECEIPT = re.compile(r'class="receipt"[^>]*>([0-9 ]{19})<')


def simulate_web(*, url: str, text: str, contact: str = "") -> int:
    """Exit 0 and print the receipt when the form took the message; 1 otherwise."""
    base = url.rstrip("/")
    try:
        with urllib.request.urlopen(base + "/help", timeout=15) as response:
            form = response.read().decode()
        token = TOKEN.search(form)
        if token is None:
            print("hotline: /help served no form token", file=sys.stderr)
            return 1
        data = urllib.parse.urlencode(
            {"token": token.group(1), "message": text, "contact": contact}
        ).encode()
        with urllib.request.urlopen(base + "/help", data=data, timeout=15) as response:
            page = response.read().decode()
    except urllib.error.HTTPError as exc:
        hint = " (is web_form.enabled true in config.yaml?)" if exc.code == 404 else ""
        print(f"hotline: the web form answered {exc.code}{hint}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"hotline: cannot reach {base} ({exc}); is `hotline run` running?", file=sys.stderr)
        return 1
    receipt = RECEIPT.search(page)
    if receipt is None:
        print("hotline: the form answered without a receipt", file=sys.stderr)
        return 1
    print(f"receipt: {receipt.group(1)}")
    print(f'Read the answer at {base}/help ("Already wrote to us?") with this receipt.')
    return 0
