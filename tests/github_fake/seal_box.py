"""Makes Curve25519 key pairs and sealed boxes with PyNaCl, for the GitHub fake (tests/github_fake).

Usage:
  seal_box.py keygen N   prints a JSON list of N {"public": base64, "private": base64} key pairs
  seal_box.py seal       reads {"public_key": base64, "plaintext": base64} from stdin and prints
                         {"encrypted_value": base64}: crypto_box_seal, as GitHub's docs tell
                         clients to encrypt a secret
"""

import base64
import json
import sys

from nacl.public import PrivateKey, PublicKey, SealedBox


def b64(data):
    return base64.b64encode(data).decode()


def keygen(count):
    pairs = []
    for _ in range(count):
        private_key = PrivateKey.generate()
        pairs.append({"public": b64(bytes(private_key.public_key)), "private": b64(bytes(private_key))})
    print(json.dumps(pairs))


def seal():
    request = json.load(sys.stdin)
    public_key = PublicKey(base64.b64decode(request["public_key"], validate=True))
    plaintext = base64.b64decode(request["plaintext"], validate=True)
    print(json.dumps({"encrypted_value": b64(SealedBox(public_key).encrypt(plaintext))}))


def main():
    match sys.argv[1:]:
        case ["keygen", count]:
            keygen(int(count))
        case ["seal"]:
            seal()
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main()
