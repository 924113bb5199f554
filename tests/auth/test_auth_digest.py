"""
Digest authentication (RFC 7616) against the user store: challenges,
responses for SHA-256 and MD5, stale and foreign nonces, replays on another
URI, and the store file's errors; and the client side against the server's.
"""

import hashlib

import pytest
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal

from resource_adaptors.auth.digest import (
    DigestAuthority, DigestClient, DigestError, UserStoreChecker, challenges)
from resource_adaptors.auth.users import IUser, User, UserRealm, UserStore, ha1
from slee.errors import ConfigurationError

REALM = "example.com"
HASHES = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}


def store():
    return UserStore(REALM, [
        User("joe", "sip:joe@example.com", False,
             {algorithm: ha1(algorithm, "joe", REALM, "secret") for algorithm in HASHES}),
        User("md5only", "sip:m@example.com", False, {"MD5": ha1("MD5", "md5only", REALM, "x")})])


def nonce_of(challenge):
    return challenge.split('nonce="')[1].split('"')[0]


def answer(challenge, username, password, method="GET", uri="/x", algorithm="SHA-256",
           **changes):
    h = lambda text: HASHES[algorithm](text.encode()).hexdigest()   # noqa: E731
    fields = {"username": username, "realm": REALM, "nonce": nonce_of(challenge), "uri": uri,
              "qop": "auth", "nc": "00000001", "cnonce": "abc", "algorithm": algorithm}
    if "algorithm_field" in changes:
        fields["algorithm"] = changes.pop("algorithm_field")
    fields.update(changes)
    ha2 = h(f"{method}:{fields['uri']}")
    fields.setdefault("response", h(f"{h(f'{username}:{REALM}:{password}')}:{fields['nonce']}:"
                                     f"{fields['nc']}:{fields['cnonce']}:auth:{ha2}"))
    return "Digest " + ", ".join(f'{name}="{value}"' for name, value in fields.items())


def login(authority, header, now=1000, method="GET", target="/x"):
    portal = Portal(UserRealm(store()), [UserStoreChecker(store())])
    credentials = authority.response(header, method, target, now)
    results = []
    portal.login(credentials, None, IUser).addBoth(results.append)
    return results[0]


def test_challenges_offer_sha256_then_md5():
    sha256, md5 = DigestAuthority(REALM, b"k").challenges(1000)
    assert "algorithm=SHA-256" in sha256 and "algorithm=MD5" in md5
    assert 'realm="example.com"' in sha256 and 'qop="auth"' in sha256
    assert "stale" not in sha256
    assert DigestAuthority(REALM, b"k").challenges(1000, stale=True)[0].endswith("stale=true")


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_a_good_response_logs_in(algorithm):
    authority = DigestAuthority(REALM, b"k")
    challenge = authority.challenges(1000)[0]
    interface, user, _ = login(authority, answer(challenge, "joe", "secret",
                                                 algorithm=algorithm), now=1010)
    assert interface is IUser and user.xui == "sip:joe@example.com"


def test_bad_passwords_and_unknown_users_fail():
    authority = DigestAuthority(REALM, b"k")
    challenge = authority.challenges(1000)[0]
    for header in (answer(challenge, "joe", "wrong"), answer(challenge, "nobody", "secret"),
                   answer(challenge, "md5only", "x")):         # no SHA-256 hash stored
        assert login(authority, header).check(UnauthorizedLogin)
    assert login(authority, answer(challenge, "md5only", "x", algorithm="MD5"))[1].name == \
        "md5only"


def test_an_old_nonce_is_stale_and_fails():
    authority = DigestAuthority(REALM, b"k", lifetime=300)
    header = answer(authority.challenges(1000)[0], "joe", "secret")
    credentials = authority.response(header, "GET", "/x", 1301)
    assert credentials.stale
    assert login(authority, header, now=1301).check(UnauthorizedLogin)


@pytest.mark.parametrize("changes, target", [
    ({"uri": "/other"}, "/x"),                     # signed for another resource
    ({"realm": "elsewhere"}, "/x"),
    ({"qop": "auth-int"}, "/x"),
    ({"algorithm_field": "SHA-512"}, "/x"),
    ({"nonce": "bm90IG91cnM="}, "/x"),             # not a nonce of ours
    ({"nonce": "!!"}, "/x"),
    ({"cnonce": ""}, "/x"),
])
def test_responses_that_do_not_fit_are_refused(changes, target):
    authority = DigestAuthority(REALM, b"k")
    header = answer(authority.challenges(1000)[0], "joe", "secret", **changes)
    with pytest.raises(DigestError):
        authority.response(header, "GET", target, 1000)


def test_a_nonce_of_another_process_is_foreign():
    header = answer(DigestAuthority(REALM, b"one").challenges(1000)[0], "joe", "secret")
    with pytest.raises(DigestError):
        DigestAuthority(REALM, b"two").response(header, "GET", "/x", 1000)


@pytest.mark.parametrize("header", ["Basic am9lOnNlY3JldA==", "Digest", 'Digest username=',
                                    'Digest username="joe" realm="x"', 'Digest a="unclosed'])
def test_malformed_authorization_headers(header):
    with pytest.raises(DigestError):
        DigestAuthority(REALM, b"k").response(header, "GET", "/x", 1000)


# -- the store file --------------------------------------------------------------

def test_a_store_file(tmp_path):
    path = tmp_path / "users.toml"
    path.write_text(f'realm = "{REALM}"\n'
                    '[users."joe@example.com"]\npassword = "secret"\n'
                    f'[users.boss]\nha1-md5 = "{ha1("MD5", "boss", REALM, "pw")}"\n'
                    'admin = true\nxui = "sip:boss@example.com"\n')
    users = UserStore.load(path)
    assert users.realm == REALM and len(users) == 2
    joe = users.get("joe@example.com")
    assert joe.xui == "sip:joe@example.com" and not joe.admin
    assert set(joe.ha1) == {"SHA-256", "MD5"}
    assert users.get("boss").admin and set(users.get("boss").ha1) == {"MD5"}
    assert users.get("nobody") is None


@pytest.mark.parametrize("text, message", [
    ("", "realm"),
    ('realm = "r"\nusers = 1', "users"),
    ('realm = "r"\n[users.a]\n', "a password or an HA1"),
    ('realm = "r"\n[users.a]\npassword = "p"\ncolour = "blue"', "unknown key 'colour'"),
    ('realm = "r"\n[users.a]\nha1-md5 = "xyz"', "32 hex digits"),
    ('realm = "r"\n[users.a]\npassword = "p"\nadmin = "yes"', "admin a boolean"),
    ("realm = ", "users.toml"),
])
def test_store_file_errors_name_the_problem(tmp_path, text, message):
    path = tmp_path / "users.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        UserStore.load(path)


def test_a_response_cannot_be_replayed():
    authority = DigestAuthority(REALM, b"k")
    challenge = authority.challenges(1000)[0]
    first = answer(challenge, "joe", "secret")
    assert login(authority, first)[1].name == "joe"
    assert login(authority, first).check(UnauthorizedLogin)              # the same nc again
    assert login(authority, answer(challenge, "joe", "secret", nc="00000002"))[1].name == "joe"
    assert login(authority, answer(challenge, "joe", "secret", nc="00000002")).check(
        UnauthorizedLogin)
    # a bad password with a higher count does not move the count on
    assert login(authority, answer(challenge, "joe", "wrong", nc="00000009")).check(
        UnauthorizedLogin)
    assert login(authority, answer(challenge, "joe", "secret", nc="00000003"))[1].name == "joe"
    with pytest.raises(DigestError):
        authority.response(answer(challenge, "joe", "secret", nc="zz"), "GET", "/x", 1000)


def test_every_challenge_has_a_nonce_of_its_own():
    authority = DigestAuthority(REALM, b"k")
    assert nonce_of(authority.challenges(1000)[0]) != nonce_of(authority.challenges(1000)[0])


# -- the client side ---------------------------------------------------------------

def test_the_client_answers_the_best_challenge_then_signs_up_front():
    authority = DigestAuthority(REALM, b"k")
    client = DigestClient("joe", "secret")
    assert client.authorization("GET", "/x") is None           # nothing to answer yet
    assert client.challenged(authority.challenges(1000)) == "SHA-256"
    for count in (1, 2, 3):                                      # one nonce, counted up
        header = client.authorization("PUT", "/x")
        assert f"nc={count:08x}" in header and 'opaque="' in header
        assert login(authority, header, method="PUT")[1].name == "joe"


def test_a_user_stored_with_md5_only_is_answered_with_md5_from_then_on():
    authority = DigestAuthority(REALM, b"k")
    client = DigestClient("md5only", "x")
    offered = authority.challenges(1000)
    assert client.challenged(offered) == "SHA-256"
    assert login(authority, client.authorization("GET", "/x")).check(UnauthorizedLogin)
    assert client.challenged(offered, refused={"SHA-256"}) == "MD5"
    assert login(authority, client.authorization("GET", "/x"))[1].name == "md5only"
    # a new challenge is answered with what worked, not with the best offered
    assert client.challenged(authority.challenges(1000, stale=True)) == "MD5"
    assert login(authority, client.authorization("GET", "/x"))[1].name == "md5only"
    # nothing left to try: the kept challenge stays
    assert client.challenged(offered, refused={"SHA-256", "MD5"}) is None
    assert login(authority, client.authorization("GET", "/x"))[1].name == "md5only"


def test_a_stale_nonce_is_replaced_and_counted_from_one():
    authority = DigestAuthority(REALM, b"k", lifetime=300)
    client = DigestClient("joe", "secret")
    client.challenged(authority.challenges(1000))
    assert login(authority, client.authorization("GET", "/x"))[1].name == "joe"
    late = client.authorization("GET", "/x")
    assert authority.response(late, "GET", "/x", 1400).stale
    client.challenged(authority.challenges(1400, stale=True))
    header = client.authorization("GET", "/x")
    assert "nc=00000001" in header
    assert login(authority, header, now=1400)[1].name == "joe"


def test_challenges_are_read_however_they_are_written():
    assert challenges(['Basic realm="x", Digest realm="r", nonce="n", qop="auth,auth-int"',
                       'Digest realm="a\\"b",nonce=n2,algorithm=MD5']) == [
        ("basic", {"realm": "x"}),
        ("digest", {"realm": "r", "nonce": "n", "qop": "auth,auth-int"}),
        ("digest", {"realm": 'a"b', "nonce": "n2", "algorithm": "MD5"})]
    assert challenges(['Digest realm="unclosed']) == [("digest", {})]


def test_challenges_the_client_cannot_answer_are_passed_over():
    client = DigestClient("joe", "secret")
    assert client.challenged([
        'Basic realm="r"',
        'Digest realm="r", nonce="n"',                                    # no qop: RFC 2069
        'Digest realm="r", nonce="n", qop="auth-int"',
        'Digest realm="r", nonce="n", qop="auth", algorithm=SHA-512-256',
        'Digest realm="r", qop="auth"']) is None
    assert client.authorization("GET", "/x") is None
    assert client.challenged(['Digest realm="r", nonce="n", qop="auth-int, auth"']) == "MD5"
