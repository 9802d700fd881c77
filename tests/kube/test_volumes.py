"""The persistent volume rules shared by admission and the volume controllers (component-helpers'
FindMatchingVolume and friends, GetDefaultClass)."""

from __future__ import annotations

from typing import Any

from kubemark.kube import volumes


def claim(size: str = "1Gi", *, uid: str = "u1", cls: str | None = "c", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}
    if cls is not None:
        body["storageClassName"] = cls
    return {"metadata": {"name": "claim", "namespace": "ns", "uid": uid}, "spec": body}


def pv(
    name: str,
    size: str,
    *,
    phase: str = "Available",
    cls: str = "c",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls, **spec},
        "status": {"phase": phase},
    }


def names(found: dict[str, Any] | None) -> str | None:
    return None if found is None else found["metadata"]["name"]


def test_the_smallest_available_volume_of_the_class_that_fits_wins() -> None:
    candidates = [pv("big", "10Gi"), pv("fits", "2Gi"), pv("tiny", "512Mi"), pv("gold", "1Gi", cls="gold")]
    assert names(volumes.find_matching_volume(claim("1Gi"), candidates)) == "fits"
    assert names(volumes.find_matching_volume(claim("1Gi", cls="gold"), candidates)) == "gold"
    assert volumes.find_matching_volume(claim("20Gi"), candidates) is None


def test_phase_modes_volume_mode_and_selector_filter_candidates() -> None:
    assert volumes.find_matching_volume(claim(), [pv("pending", "1Gi", phase="Pending")]) is None
    assert volumes.find_matching_volume(claim(), [pv("rox", "1Gi", modes=("ReadOnlyMany",))]) is None
    assert volumes.find_matching_volume(claim(), [pv("block", "1Gi", volumeMode="Block")]) is None
    # A volume with more modes than asked is a candidate; between equal sizes the smaller mode set wins.
    both = pv("both", "1Gi", modes=("ReadWriteOnce", "ReadOnlyMany"))
    assert names(volumes.find_matching_volume(claim(), [both, pv("one", "1Gi")])) == "one"
    labelled = [pv("a", "1Gi", labels={"tier": "fast"}), pv("b", "1Gi")]
    selected = claim(selector={"matchLabels": {"tier": "fast"}})
    assert names(volumes.find_matching_volume(selected, labelled)) == "a"


def test_a_volume_pre_bound_to_the_claim_wins_whatever_its_phase_and_size_order() -> None:
    ref = {"namespace": "ns", "name": "claim"}
    candidates = [pv("small", "1Gi"), pv("reserved", "5Gi", phase="Pending", claimRef=ref)]
    assert names(volumes.find_matching_volume(claim(), candidates)) == "reserved"
    # Reserved for another claim (or an older claim of that name: another UID): never a candidate.
    other = pv("other", "1Gi", claimRef={"namespace": "ns", "name": "claim", "uid": "old"})
    assert volumes.find_matching_volume(claim(uid="new"), [other]) is None
    # WaitForFirstConsumer: only a pre-bound volume is taken by the controller.
    assert names(volumes.find_matching_volume(claim(), candidates, delay_binding=True)) == "reserved"
    assert volumes.find_matching_volume(claim(), [pv("small", "1Gi")], delay_binding=True) is None


def test_class_of_a_claim_reads_the_beta_annotation_first() -> None:
    beta = claim(cls="spec-class")
    beta["metadata"]["annotations"] = {volumes.ANN_BETA_STORAGE_CLASS: "beta-class"}
    assert volumes.claim_class(beta) == "beta-class" and volumes.claim_has_class(beta)
    assert volumes.claim_class(claim(cls=None)) == "" and not volumes.claim_has_class(claim(cls=None))
    assert volumes.claim_has_class(claim(cls=""))  # "" is a request for no class, not a missing one


def test_default_class_is_the_newest_default_annotated_then_by_name() -> None:
    def sc(name: str, created: str, default: str | None) -> dict[str, Any]:
        annotations = {volumes.ANN_IS_DEFAULT_CLASS: default} if default is not None else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations}}

    classes = [
        sc("old", "2026-01-01T00:00:00Z", "true"),
        sc("new-b", "2026-02-01T00:00:00Z", "true"),
        sc("new-a", "2026-02-01T00:00:00Z", "true"),
        sc("newest-not-default", "2026-03-01T00:00:00Z", "false"),
        sc("plain", "2026-03-01T00:00:00Z", None),
    ]
    assert names(volumes.default_storage_class(classes)) == "new-a"
    assert volumes.default_storage_class(classes[3:]) is None
    beta = {"metadata": {"name": "beta", "annotations": {volumes.ANN_BETA_IS_DEFAULT_CLASS: "true"}}}
    assert names(volumes.default_storage_class([beta])) == "beta"
