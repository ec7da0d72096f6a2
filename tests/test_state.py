"""First-seen state: compact, round-trips, merges on conflict, never overwrites what it cannot read."""

from __future__ import annotations

import base64
import gzip
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from kitgc.errors import KubernetesError
from kitgc.model import State, state_key
from kitgc.state import DATA_KEY, MAX_BYTES, StateStore, StateUnreadable, decode, encode, merge
from testbed import objects as o

T0 = datetime(2025, 1, 1, tzinfo=UTC)
CM_PATH = "/api/v1/namespaces/kitgc/configmaps"


def key(i: int, repo: str = "camel-k/camel-k-kit-a") -> str:
    return state_key(repo, o.digest(i))


def state(**times: int) -> State:
    """``state(a=0, b=5)``: keys a, b first seen T0 + 0 s, T0 + 5 s."""
    return State({name: T0 + timedelta(seconds=s) for name, s in times.items()})


def test_encode_decode_round_trips_to_the_second():
    st = State({key(1): T0, key(2, "team/camel-k/camel-k-kit-b"): T0 + timedelta(days=3, seconds=7),
                key(3): T0 + timedelta(microseconds=900)})
    back = decode(encode(st))
    assert back.first_seen == {k: t.replace(microsecond=0) for k, t in st.first_seen.items()}
    assert all(t.tzinfo is not None for t in back.first_seen.values())


def test_encoding_is_grouped_by_repository_gzip_base64_json():
    cm = encode(State({key(1): T0, key(2): T0, key(3, "org/camel-k-kit-z"): T0}))
    doc = json.loads(gzip.decompress(base64.b64decode(cm["binaryData"][DATA_KEY])))
    assert doc["format"] == "kitgc-first-seen/v1"
    assert {r: len(d) for r, d in doc["repositories"].items()} == {"camel-k/camel-k-kit-a": 2, "org/camel-k-kit-z": 1}
    assert cm["data"]["entries"] == "3"


@pytest.mark.parametrize("repositories", [2_000, 20_000])
def test_twenty_thousand_random_entries_fit_one_configmap(repositories):
    rng = random.Random(7)
    repos = [f"camel-k/camel-k-{o.kit_name(i)}" for i in range(repositories)]
    st = State({state_key(repos[i % repositories], "sha256:" + rng.randbytes(32).hex()):
                T0 + timedelta(seconds=rng.randrange(10**8)) for i in range(20_000)})
    cm = encode(st)
    counted = sum(len(base64.b64decode(v)) for v in cm["binaryData"].values()) + sum(map(len, cm["data"].values()))
    assert counted < 800_000 < MAX_BYTES < 1024 * 1024  # the API server counts binaryData decoded
    assert len(json.dumps(cm)) < 1_100_000  # and the request body stays small too
    assert cm["data"]["entries"] == "20000"
    assert decode(cm).first_seen == st.first_seen


def test_over_the_limit_the_newest_entries_are_dropped():
    st = State({key(i): T0 + timedelta(hours=i) for i in range(200)})
    with capture_logs() as logs:
        cm = encode(st, limit=3000)
    kept = decode(cm).first_seen
    assert 0 < len(kept) < 200
    assert set(kept) == {key(i) for i in range(len(kept))}  # the oldest ones
    assert logs[0]["event"] == "state_truncated" and logs[0]["log_level"] == "warning"


@pytest.mark.parametrize(
    "binary",
    ["not base64!", base64.b64encode(b"not gzip").decode(), base64.b64encode(gzip.compress(b"{nope")).decode(),
     base64.b64encode(gzip.compress(b'{"format": "other", "repositories": {}}')).decode(),
     base64.b64encode(gzip.compress(b'{"format": "kitgc-first-seen/v1", "repositories": {"r": {"d": "x"}}}')).decode()],
    ids=["base64", "gzip", "json", "format", "time"],
)
def test_decode_rejects_what_it_cannot_read(binary):
    with pytest.raises(StateUnreadable):
        decode({"binaryData": {DATA_KEY: binary}})


def test_merge_keeps_our_keys_and_the_earliest_time():
    ours, theirs = state(a=10, b=10, c=10), state(a=5, b=20, d=1)
    assert merge(ours, theirs) == state(a=5, b=10, c=10)


# --- against the emulator -------------------------------------------------------------------


def store(kube) -> StateStore:
    return StateStore(kube.client(), "kitgc", "kitgc-state", backoff=0.001)


def stored(kube) -> dict:
    res = kube.api.store.resource("", "v1", "configmaps")
    return kube.api.store.get(res, "kitgc", "kitgc-state")


def test_missing_configmap_is_empty_state_and_save_creates_it(kube):
    s = store(kube)
    assert s.load() == State()
    s.save(state(a=1))
    assert [(w.method, w.path) for w in kube.writes()] == [("POST", CM_PATH)]
    assert store(kube).load() == state(a=1)
    assert stored(kube)["metadata"]["labels"]["app.kubernetes.io/name"] == "camel-k-kit-gc"


def test_save_updates_with_the_resource_version_it_read(kube):
    first = store(kube)
    first.load()
    first.save(state(a=1))
    first.save(state(a=1, b=2))  # a second save in the same process updates again
    second = store(kube)
    assert second.load() == state(a=1, b=2)
    second.save(state(b=2))
    assert store(kube).load() == state(b=2)
    assert [w.method for w in kube.writes()] == ["POST", "PUT", "PUT"]


def test_update_keeps_other_keys_and_labels_of_the_configmap(kube):
    cm = o.configmap("kitgc-state", "kitgc", data={"note": "managed by kitgc"})
    cm["metadata"]["labels"] = {"team": "platform"}
    kube.add(cm)
    s = store(kube)
    assert s.load() == State()
    s.save(state(a=1))
    after = stored(kube)
    assert after["data"]["note"] == "managed by kitgc" and after["metadata"]["labels"] == {"team": "platform"}
    assert decode(after) == state(a=1)


def test_conflict_rereads_and_merges_once(kube):
    kube.add({**o.configmap("kitgc-state", "kitgc"), **encode(state(a=10, b=10))})
    s = store(kube)
    assert s.load() == state(a=10, b=10)
    other = store(kube)
    other.load()
    other.save(state(a=3, b=30, z=1))  # a concurrent writer
    s.save(state(a=10, b=10, c=10))
    assert decode(stored(kube)) == state(a=3, b=10, c=10)
    assert [(r.method, r.status) for r in kube.requests[-3:]] == [("PUT", 409), ("GET", 200), ("PUT", 200)]


def test_second_conflict_raises_a_partial_failure(kube):
    kube.add({**o.configmap("kitgc-state", "kitgc"), **encode(state(a=1))})
    res = kube.api.store.resource("", "v1", "configmaps")

    def touch_before_every_put(method, path, query):
        if method == "PUT":
            current = kube.api.store.get(res, "kitgc", "kitgc-state")
            kube.api.store.update(res, "kitgc", "kitgc-state", current)

    s = store(kube)
    s.load()
    kube.api.on_request(touch_before_every_put)
    with pytest.raises(KubernetesError, match="cannot save state to ConfigMap kitgc/kitgc-state: 409 Conflict") as err:
        s.save(state(a=1, b=2))
    assert err.value.exit_code == 1 and err.value.status == 409


@pytest.mark.parametrize(
    "setup",
    [lambda k: k.add(o.configmap("kitgc-state", "kitgc", binary_data={DATA_KEY: "bm90IGd6aXA="})),
     lambda k: k.inject("GET", f"{CM_PATH}/kitgc-state", status=403)],
    ids=["garbage", "forbidden"],
)
def test_unreadable_configmap_is_empty_state_and_never_overwritten(kube, setup):
    setup(kube)
    s = store(kube)
    with capture_logs() as logs:
        assert s.load() == State()
        s.save(state(a=1))
    assert s.protected and kube.writes() == []
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["state_unreadable", "state_not_saved"]


def test_save_failure_raises_kubernetes_error(kube):
    kube.inject("POST", CM_PATH, status=403)
    s = store(kube)
    s.load()
    with pytest.raises(KubernetesError, match="403 Forbidden: configmaps is forbidden"):
        s.save(state(a=1))


def test_keys_without_one_at_sign_are_gathered_under_their_repository() -> None:
    """A digest-only key (an old state's) and a key with two ``@`` (which no run writes) do not
    sort into one run with their repository's other keys; they are still one JSON key each."""
    st = State({"sha256:" + "a" * 24: T0, key(1): T0, "camel-k/x@y@sha256:" + "b" * 24: T0,
                "zz-" + "c" * 24: T0 + timedelta(hours=1), key(2): T0, "camel-k/x@y@sha256:" + "d" * 24: T0})
    assert decode(encode(st)).first_seen == st.first_seen


def test_encoding_builds_no_document_of_its_own() -> None:
    """The state is written into the compressor one repository at a time: built whole (a dict
    per repository, every key split, the JSON text and its bytes) it was 30 MB at the 77,000
    entries of a 100,000-manifest registry, at the end of the run."""
    import tracemalloc

    rng = random.Random(11)
    st = State({state_key(f"camel-k/camel-k-{o.kit_name(i // 3)}", "sha256:" + rng.randbytes(32).hex()):
                T0 + timedelta(seconds=i) for i in range(20_000)})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cm = encode(st)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert cm["data"]["entries"] == "20000"
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MB"
