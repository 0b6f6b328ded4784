"""Verifies a Warden passport with PyJWT, a stock JWT library, as a Python worker would.

Usage: verify.py JWKS_FILE TOKEN ISSUER
Prints the verified header and claims as JSON; exits 1 with the error's class name when
PyJWT refuses the token.
"""

import json
import sys

import jwt


def main() -> int:
    jwks_path, token, issuer = sys.argv[1:4]
    with open(jwks_path, encoding="utf-8") as f:
        keys = jwt.PyJWKSet.from_dict(json.load(f))
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "warden-passport+jwt":
        print("wrong typ", file=sys.stderr)
        return 1
    key = next((k for k in keys.keys if k.key_id == header.get("kid")), None)
    if key is None:
        print("UntrustedKey", file=sys.stderr)
        return 1
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            issuer=issuer,
            # The worker checks expiry against its own (workflow) clock.
            options={"verify_exp": False, "require": ["iss", "iat", "exp"]},
        )
    except jwt.PyJWTError as error:
        print(type(error).__name__, file=sys.stderr)
        return 1
    print(json.dumps({"header": header, "claims": claims}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
