"""The rules every PUBLISH follows (RFC 3903 §6), sans-IO."""

import pickle

from sbbs.sipevent.publication import Publications
from sbbs.sipevent.subscription import ExpiryPolicy

POLICY = ExpiryPolicy(default=3600, minimum=60, maximum=7200)
PIDF = "application/pidf+xml"


def initial(publications=Publications(), now=100.0, body=b"<open/>", expires=None):
    outcome = publications.publish(now, POLICY, body=body, content_type=PIDF, expires=expires)
    return outcome, publications.after(outcome) if outcome.status == 200 else publications


def test_an_initial_publication_gets_an_etag_and_the_granted_expiry():
    outcome, publications = initial(expires=10 ** 12)
    assert (outcome.status, outcome.expires) == (200, 7200)     # cut to the maximum
    assert outcome.etag and outcome.changed_state
    assert publications.get(outcome.etag).expires_at == 100.0 + 7200


def test_refresh_modify_and_remove():
    first, publications = initial()
    refresh = publications.publish(200.0, POLICY, if_match=first.etag, expires=600)
    assert refresh.status == 200 and refresh.etag != first.etag     # a new ETag each time
    assert not refresh.changed_state                                  # the same body
    publications = publications.after(refresh)
    assert publications.get(first.etag) is None
    modify = publications.publish(300.0, POLICY, if_match=refresh.etag, body=b"<closed/>",
                                  content_type=PIDF)
    assert modify.changed_state
    publications = publications.after(modify)
    assert [p.body for p in publications] == [b"<closed/>"]
    remove = publications.publish(400.0, POLICY, if_match=modify.etag, expires=0)
    assert (remove.status, remove.expires, remove.etag) == (200, 0, None)
    assert len(publications.after(remove)) == 0


def test_only_an_initial_publication_is_a_new_one_for_the_quotas():
    first, publications = initial()
    assert first.is_new
    refresh = publications.publish(200.0, POLICY, if_match=first.etag, expires=600)
    remove = publications.publish(200.0, POLICY, if_match=first.etag, expires=0)
    refused = publications.publish(1.0, POLICY, body=b"x", content_type=PIDF, expires=5)
    assert not (refresh.is_new or remove.is_new or refused.is_new)


def test_refusals():
    first, publications = initial()
    assert publications.publish(1.0, POLICY, if_match="nope").status == 412
    assert publications.publish(10 ** 6, POLICY, if_match=first.etag).status == 412  # expired
    assert publications.publish(1.0, POLICY).status == 400                   # no body
    too_brief = publications.publish(1.0, POLICY, body=b"x", content_type=PIDF, expires=5)
    assert (too_brief.status, too_brief.expires) == (423, 60)
    assert publications.publish(1.0, POLICY, body=b"x", content_type=PIDF,
                                expires=0).status == 400


def test_publications_survive_pickling_as_stored_data_must():
    _, publications = initial()
    assert pickle.loads(pickle.dumps(publications)) == publications
