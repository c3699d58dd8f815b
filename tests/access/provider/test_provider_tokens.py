"""ProviderVerifier: what it accepts, and the exact reason for each refusal (keys on loopback)."""

from __future__ import annotations

import pytest
from provider_support import (
    AUDIENCE,
    NOW,
    b64_json,
    denied,
    ec_key,
    ed25519_key,
    hmac_token,
    rsa_key,
    unsigned_token,
)

from glm_relay.access import AccessClaims, TokenLimits
from glm_relay.access.jwks import DEFAULT_ALGORITHMS
from glm_relay.access.provider import MAX_TOKEN_BYTES

COGNITO_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
COGNITO_CLIENT = "4b1sfj0p5n1ojmnp0bcnnr6jrq"


# --- what is accepted ----------------------------------------------------------------------------


async def test_valid_token_gives_the_relays_claims(verifier, claims, idp):
    claims_out = await verifier.verify(rsa_key().sign(claims))
    assert claims_out == AccessClaims(sub="user-42", expires_at=NOW + 600, limits=TokenLimits())
    assert idp.jwks_hits() == 1


async def test_keys_are_cached_for_the_container(verifier, claims, idp):
    for _ in range(5):
        await verifier.verify(rsa_key().sign(claims))
    assert idp.jwks_hits() == 1


@pytest.mark.parametrize("alg", DEFAULT_ALGORITHMS)
async def test_every_default_algorithm_verifies(make_verifier, idp, claims, alg):
    if alg.startswith(("RS", "PS")):
        key = rsa_key("rsa-any", alg)
    elif alg.startswith("ES"):
        key = ec_key(f"ec-{alg}", alg)
    else:
        key = ed25519_key()
    idp.publish(key)
    assert (await make_verifier().verify(key.sign(claims))).sub == "user-42"


async def test_rsa_key_without_alg_serves_rs_and_ps_tokens(make_verifier, idp, claims):
    key = rsa_key()
    idp.keys = [key.jwk(alg=None)]
    verifier = make_verifier()
    for alg in ("RS256", "PS256", "RS512", "PS384"):
        assert (await verifier.verify(key.sign(claims, alg=alg))).sub == "user-42"


async def test_token_without_kid_uses_the_only_suitable_key(make_verifier, idp, claims):
    rsa, ec = rsa_key(), ec_key()
    idp.publish(rsa, ec)  # one key per algorithm family
    verifier = make_verifier()
    assert (await verifier.verify(rsa.sign(claims, kid=None))).sub == "user-42"
    assert (await verifier.verify(ec.sign(claims, kid=None))).sub == "user-42"


async def test_audience_list_needs_one_match(make_verifier, claims):
    verifier = make_verifier(audience=["other-api", AUDIENCE])
    claims["aud"] = ["unrelated", AUDIENCE]
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"
    claims["aud"] = "other-api"
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"


async def test_float_exp_is_floored(verifier, claims):
    claims["exp"] = NOW + 30.9
    assert (await verifier.verify(rsa_key().sign(claims))).expires_at == NOW + 30


# --- shape and algorithm -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "missing token"),
        ("", "missing token"),
        (b"a.b.c", "malformed token"),
        ("not-a-token", "malformed token"),
        ("a.b", "malformed token"),
        ("a.b.c.d", "malformed token"),
        ("a+b.c.d", "malformed token"),
        ("x" * (MAX_TOKEN_BYTES + 1), "token too large"),
        (f"{b64_json('not an object')}.{b64_json({})}.sig", "malformed token"),
        (f"{b64_json({'typ': 'JWT'})}.{b64_json({})}.sig", "malformed token"),
        (f"{b64_json({'alg': 256})}.{b64_json({})}.sig", "malformed token"),
        ("e30.e30.", "malformed token"),
    ],
)
async def test_malformed_tokens_are_refused_without_fetching(verifier, idp, token, message):
    assert await denied(verifier, token) == message
    assert idp.jwks_hits() == 0


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(verifier, claims, idp, alg):
    token = unsigned_token(claims, {"alg": alg, "kid": "rsa-1"})
    assert await denied(verifier, token) == "algorithm not allowed"
    assert idp.jwks_hits() == 0


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_signed_with_the_public_key_is_refused(verifier, claims, idp, alg):
    # Algorithm confusion: the public key (PEM or the JWK's modulus) used as an HMAC secret.
    key = rsa_key()
    for secret in (key.public_pem(), key.jwk()["n"]):
        token = hmac_token(claims, secret, {"alg": alg, "typ": "JWT", "kid": "rsa-1"})
        assert await denied(verifier, token) == "algorithm not allowed"
    assert idp.jwks_hits() == 0


async def test_algorithm_outside_the_configured_list_is_refused(make_verifier, idp, claims):
    key = rsa_key()
    verifier = make_verifier(algorithms=["RS256"])
    assert await denied(verifier, key.sign(claims, alg="PS256")) == "algorithm not allowed"
    assert await denied(verifier, ec_key().sign(claims)) == "algorithm not allowed"
    assert (await verifier.verify(key.sign(claims))).sub == "user-42"


async def test_key_bound_to_another_algorithm_is_refused(make_verifier, idp, claims):
    key = rsa_key()  # published with "alg": "RS256"
    assert await denied(make_verifier(), key.sign(claims, alg="PS256")) == (
        "signing key does not match the token algorithm"
    )


async def test_ec_key_with_the_wrong_curve_for_the_algorithm_is_refused(make_verifier, idp, claims):
    p256 = ec_key("ec-1", "ES256")
    idp.keys = [p256.jwk(alg=None)]
    p384 = ec_key("ec-1", "ES384")  # same kid, signs ES384 with a P-384 key
    assert await denied(make_verifier(), p384.sign(claims)) == (
        "signing key does not match the token algorithm"
    )


async def test_rsa_kid_on_an_ec_token_is_refused(make_verifier, idp, claims):
    token = ec_key().sign(claims, kid="rsa-1")
    assert await denied(make_verifier(), token) == "signing key does not match the token algorithm"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"use": "enc"}, "unknown signing key"),  # not a signing key: dropped from the set
        ({"key_ops": ["encrypt"]}, "signing key does not match the token algorithm"),
        ({"key_ops": "verify"}, "signing key does not match the token algorithm"),
    ],
)
async def test_key_not_meant_for_verification_is_not_used(
    make_verifier, idp, claims, changes, message
):
    key = rsa_key()
    idp.keys = [key.jwk(**changes), ec_key().jwk()]
    assert await denied(make_verifier(), key.sign(claims)) == message


async def test_symmetric_keys_in_the_set_are_ignored(make_verifier, idp, claims):
    idp.keys = [{"kty": "oct", "kid": "shared", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]
    idp.keys.append(rsa_key().jwk())
    token = hmac_token(claims, "secretsecretsecretsecretsecret", {"alg": "HS256", "kid": "shared"})
    verifier = make_verifier()
    assert await denied(verifier, token) == "algorithm not allowed"
    assert await denied(verifier, rsa_key().sign(claims, kid="shared")) == "unknown signing key"


async def test_crit_header_is_refused(verifier, claims):
    token = rsa_key().sign(claims, headers={"crit": ["exp"], "exp": 1})
    assert await denied(verifier, token) == "malformed token"


async def test_non_string_kid_is_refused(verifier, claims):
    genuine = rsa_key().sign(claims)
    token = genuine.replace(genuine.split(".")[0], b64_json({"alg": "RS256", "kid": 7}), 1)
    assert await denied(verifier, token) == "malformed token"


# --- keys and signatures -------------------------------------------------------------------------


async def test_known_kid_with_another_keys_signature_is_refused(verifier, claims):
    forged = rsa_key("rsa-1", seed="attacker").sign(claims)
    assert await denied(verifier, forged) == "bad signature"


@pytest.mark.parametrize("kid", ["rsa-1", "attacker-kid"])
async def test_keys_embedded_in_the_header_are_never_trusted(verifier, claims, idp, kid):
    attacker = rsa_key(kid, seed="attacker")
    headers = {"jwk": attacker.jwk(), "jku": idp.base_url + "/attacker.json", "x5u": "https://x"}
    message = await denied(verifier, attacker.sign(claims, headers=headers))
    assert message == ("bad signature" if kid == "rsa-1" else "unknown signing key")
    assert set(idp.hits) == {"/.well-known/jwks.json"}


async def test_tampered_payload_is_refused(verifier, claims):
    genuine = rsa_key().sign(claims)
    head, _, signature = genuine.split(".")
    tampered = f"{head}.{b64_json({**claims, 'sub': 'admin'})}.{signature}"
    assert await denied(verifier, tampered) == "bad signature"


async def test_unknown_kid_is_refused_after_one_refresh(verifier, clock, claims, idp):
    await verifier.verify(rsa_key().sign(claims))
    token = rsa_key("stranger").sign(claims)
    # Just fetched: the set is current, so there is nothing to refresh yet.
    assert await denied(verifier, token) == "unknown signing key"
    assert idp.jwks_hits() == 1
    clock.advance(verifier.keys.refresh_interval_seconds)
    assert await denied(verifier, token) == "unknown signing key"
    assert idp.jwks_hits() == 2


async def test_token_without_kid_and_several_candidate_keys_is_refused(make_verifier, idp, claims):
    idp.publish(rsa_key("rsa-1"), rsa_key("rsa-2"))
    token = rsa_key("rsa-1").sign(claims, kid=None)
    assert await denied(make_verifier(), token) == "token has no key id"


async def test_token_without_kid_and_no_candidate_key_is_refused(make_verifier, idp, claims):
    assert await denied(make_verifier(), ec_key().sign(claims, kid=None)) == "unknown signing key"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_weak_rsa_key_is_refused(make_verifier, idp, claims):
    weak = rsa_key("weak", bits=1024)
    idp.publish(weak)
    assert await denied(make_verifier(), weak.sign(claims)) == "signing key too weak"


async def test_broken_jwk_is_refused(make_verifier, idp, claims):
    key = rsa_key()
    idp.keys = [key.jwk(n="AQAB!")]
    assert await denied(make_verifier(), key.sign(claims)) == "unusable signing key"
