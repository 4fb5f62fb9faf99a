"""Opens a libsodium sealed box with PyNaCl, for the GitHub fake (tests/github_fake).

Reads one JSON object from stdin: {"private_key": base64 of 32 bytes, "encrypted_value": base64}.
Prints one JSON line: {"plaintext": base64} when the box opens, {"error": reason} when it does not.
An independent libsodium binding checks what a client (PyGithub, the plugin's crypto_box) sealed.
"""

import base64
import binascii
import json
import sys

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox


def main():
    request = json.load(sys.stdin)
    try:
        private_key = PrivateKey(base64.b64decode(request["private_key"], validate=True))
    except (binascii.Error, ValueError, TypeError) as e:
        sys.exit(f"open_box.py: not a Curve25519 private key: {e}")
    try:
        box = base64.b64decode(request["encrypted_value"], validate=True)
    except (binascii.Error, ValueError) as e:
        print(json.dumps({"error": f"encrypted_value is not base64: {e}"}))
        return
    try:
        plaintext = SealedBox(private_key).decrypt(box)
    except (CryptoError, ValueError, TypeError) as e:
        print(json.dumps({"error": f"the sealed box does not open ({len(box)} bytes): {e}"}))
        return
    print(json.dumps({"plaintext": base64.b64encode(plaintext).decode()}))


if __name__ == "__main__":
    main()
