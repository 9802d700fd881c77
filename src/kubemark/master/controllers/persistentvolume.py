"""PersistentVolume binder (pkg/controller/volume/persistentvolume) and a hollow external CSI provisioner.

`PersistentVolumeController` is kube-controller-manager's persistentvolume-binder, with its binding semantics:

- syncClaim: a claim without `pv.kubernetes.io/bind-completed` is unbound. With no spec.volumeName it gets the
  best matching volume (pre-bound to it, else the smallest Available one of its class, size, volume mode and
  selector; `kube.volumes.find_matching_volume`), and `bind` writes the volume (claimRef, `bound-by-controller`),
  the volume's phase Bound, the claim (volumeName, `bound-by-controller`, `bind-completed`) and the claim's
  status (Bound, capacity, access modes), in that order, each a write that a conflict sends back to the queue.
  No volume: a claim without a class gets the default class (assignDefaultStorageClass); a claim of a class
  whose provisioner is external gets `volume.kubernetes.io/storage-provisioner` (and the beta form) so the
  provisioner starts (provisionClaimOperationExternal); otherwise it stays Pending. A bound claim whose volume
  vanished or went to another claim is Lost.
- syncVolume: a volume without claimRef (or pre-bound without a UID) is Available; bound to an existing claim
  that names it, Bound; its claim gone, Released and then its reclaim policy runs: Retain keeps it Released,
  Delete leaves provisioned and CSI volumes to their external deleter (the provisioner below) and marks others
  Failed (no in-tree deleter plugin on hollow nodes), Recycle marks it Failed (no recycler plugin).
- Claims and volumes are re-synced every `resync_period` (--pvclaimbinder-sync-period, 15 s), as upstream's
  periodic resync, which retries what the last pass could not finish.

As upstream, writes go out with the resourceVersion the controller last saw; the objects it wrote are kept
(storeClaimUpdate / storeVolumeUpdate) so the next sync does not act on the informer's older copy.

`HollowProvisioner` stands in for the external-provisioner sidecar of a CSI driver (`kube.volumes.
HOLLOW_PROVISIONER`, the master's default class): for a claim the binder handed to it (the storage-provisioner
annotation), of a class with that provisioner, it creates `pvc-<claim uid>` with the claim's size, access
modes, volume mode and class, the class's reclaim policy and mount options, a CSI source of the hollow driver,
`pv.kubernetes.io/provisioned-by` and a claimRef to the claim, and the binder binds it. A volume it provisioned
that is Released with reclaim policy Delete is deleted (its "DeleteVolume" is a no-op).

WaitForFirstConsumer claims wait for the scheduler: it binds a static volume itself (claimRef) or sets the
selected-node annotation, after which the binder provisions as for Immediate claims.

Not implemented: volume expansion, the pv/pvc-protection finalizers, migrated in-tree volumes, events.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from kubemark.client import APIError, RestClient, is_already_exists, is_not_found, namespaced_key, resource_path
from kubemark.kube import volumes
from kubemark.kube.meta import resource_version
from kubemark.kube.quantity import canonical_quantity
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.ownership import is_deleting, meta, uid_of
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

PV_CLAIM_BINDER_SYNC_PERIOD = 15.0  # kube-controller-manager --pvclaimbinder-sync-period
CLAIM = "claim:"
VOLUME = "volume:"
# Released and Failed volumes keep their phase: reclaiming is retried, the phase is not re-written.
_RECLAIMING = ("Released", "Failed")


def _annotations(obj: Obj) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def _phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def _claim_ref_key(volume: Obj) -> str | None:
    ref = (volume.get("spec") or {}).get("claimRef")
    if not ref:
        return None
    return f"{ref.get('namespace') or ''}/{ref.get('name') or ''}"


class _Written:
    """The objects this controller wrote last, newer than the informer's copy until the watch catches up."""

    def __init__(self) -> None:
        self._objs: dict[str, Obj] = {}

    def put(self, obj: Obj) -> Obj:
        self._objs[namespaced_key(obj)] = obj
        return obj

    def drop(self, key: str) -> None:
        self._objs.pop(key, None)

    def newest(self, key: str, cached: Obj | None) -> Obj | None:
        written = self._objs.get(key)
        if written is None:
            return cached
        if cached is None or resource_version(cached) >= resource_version(written):
            self._objs.pop(key, None)  # the watch has it now (or it was deleted)
            return cached
        return written


class PersistentVolumeController(Controller):
    """kube-controller-manager's persistentvolume-binder (see the module docstring)."""

    name = "persistentvolume-binder"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 2,
        resync_period: float = PV_CLAIM_BINDER_SYNC_PERIOD,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.resync_period = resync_period
        self.claims = self.use("", "v1", "persistentvolumeclaims")
        self.volumes = self.use("", "v1", "persistentvolumes")
        self.classes = self.use("storage.k8s.io", "v1", "storageclasses")
        self._claims = _Written()
        self._volumes = _Written()
        self.claims.add_handler(self._claim_event, lambda old, new: self._claim_event(new), self._claim_deleted)
        self.volumes.add_handler(self._volume_event, lambda old, new: self._volume_event(new), self._volume_deleted)

    # -- events ---------------------------------------------------------------------------------------------

    def _claim_event(self, claim: Obj) -> None:
        self.queue.add(CLAIM + namespaced_key(claim))

    def _claim_deleted(self, claim: Obj) -> None:
        """deleteClaim: forget it, and sync its volume so that it is released."""
        self._claims.drop(namespaced_key(claim))
        name = (claim.get("spec") or {}).get("volumeName")
        if name:
            self.queue.add(VOLUME + str(name))

    def _volume_event(self, volume: Obj) -> None:
        self.queue.add(VOLUME + namespaced_key(volume))

    def _volume_deleted(self, volume: Obj) -> None:
        """deleteVolume: forget it, and sync its claim (which becomes Lost if it was bound)."""
        self._volumes.drop(namespaced_key(volume))
        key = _claim_ref_key(volume)
        if key:
            self.queue.add(CLAIM + key)

    def background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._resync()] if self.resync_period > 0 else []

    async def _resync(self) -> None:
        """resync: every claim and volume back through the queue each period."""
        while True:
            await asyncio.sleep(self.resync_period)
            for claim in self.claims.list():
                self._claim_event(claim)
            for volume in self.volumes.list():
                self._volume_event(volume)

    # -- reads ----------------------------------------------------------------------------------------------

    def _claim(self, key: str) -> Obj | None:
        return self._claims.newest(key, self.claims.get(key))

    def _volume(self, name: str) -> Obj | None:
        return self._volumes.newest(name, self.volumes.get(name))

    def _all_volumes(self) -> list[Obj]:
        newest = (self._volumes.newest(namespaced_key(v), v) for v in self.volumes.list())
        return [v for v in newest if v is not None]

    def _storage_class(self, name: str) -> Obj | None:
        return self.classes.get(name) if name else None

    # -- sync -----------------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key.startswith(CLAIM):
            claim = self._claim(key[len(CLAIM) :])
            if claim is not None:
                await self.sync_claim(claim)
        elif key.startswith(VOLUME):
            volume = self._volume(key[len(VOLUME) :])
            if volume is not None:
                await self.sync_volume(volume)

    async def sync_claim(self, claim: Obj) -> None:
        """syncClaim."""
        if volumes.ANN_BIND_COMPLETED in _annotations(claim):
            await self._sync_bound_claim(claim)
        else:
            await self._sync_unbound_claim(claim)

    async def _sync_unbound_claim(self, claim: Obj) -> None:
        wanted = str((claim.get("spec") or {}).get("volumeName") or "")
        if not wanted:
            storage_class = self._storage_class(volumes.claim_class(claim))
            delay = storage_class is not None and (
                volumes.binding_mode(storage_class) == volumes.BINDING_WAIT_FOR_FIRST_CONSUMER
            )
            volume = volumes.find_matching_volume(claim, self._all_volumes(), delay_binding=delay)
            if volume is not None:
                await self._bind(volume, claim)
                return
            if await self._assign_default_class(claim):
                return  # the update's event brings the claim back with its class
            if delay and volumes.ANN_SELECTED_NODE not in _annotations(claim):
                pass  # WaitForFirstConsumer: the scheduler picks a node first
            elif volumes.claim_class(claim):
                await self._provision(claim, storage_class)
                return
            await self._update_claim_status(claim, "Pending", None)
            return
        volume = self._volume(wanted)
        if volume is None:
            await self._update_claim_status(claim, "Pending", None)  # asked for a volume that does not exist (yet)
            return
        if not (volume.get("spec") or {}).get("claimRef"):
            if self._satisfies(volume, claim):
                await self._bind(volume, claim)
            else:
                await self._update_claim_status(claim, "Pending", None)
        elif volumes.volume_bound_to_claim(volume, claim):
            await self._bind(volume, claim)  # pre-bound both ways: finish it
        elif volumes.ANN_BOUND_BY_CONTROLLER not in _annotations(claim):
            await self._update_claim_status(claim, "Pending", None)  # the user's volume belongs to another claim
        else:
            raise RuntimeError(
                f"invalid binding of claim {namespaced_key(claim)!r} to volume {wanted!r}: volume already claimed "
                f"by {_claim_ref_key(volume)!r}"
            )

    @staticmethod
    def _satisfies(volume: Obj, claim: Obj) -> bool:
        """checkVolumeSatisfyClaim."""
        return (
            not is_deleting(volume)
            and volumes.volume_capacity(volume) >= volumes.requested_storage(claim)
            and volumes.volume_class(volume) == volumes.claim_class(claim)
            and not volumes.volume_mode_mismatch(claim, volume)
            and volumes.access_modes_satisfied(claim, volume)
        )

    async def _sync_bound_claim(self, claim: Obj) -> None:
        name = str((claim.get("spec") or {}).get("volumeName") or "")
        volume = self._volume(name) if name else None
        if volume is None:
            await self._update_claim_status(claim, "Lost", None)  # its volume is gone: the data is lost
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or ref.get("uid") == uid_of(claim):
            await self._bind(volume, claim)  # re-bind a volume that came unbound; a no-op when all is set
        else:
            await self._update_claim_status(claim, "Lost", None)  # two claims on one volume: this one misbound

    async def sync_volume(self, volume: Obj) -> None:
        """syncVolume."""
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or not ref.get("uid"):
            await self._update_volume_phase(volume, "Available")  # unused, or pre-bound and waiting for its claim
            return
        key = _claim_ref_key(volume) or ""
        claim = self._claim(key)
        if claim is None and _phase(volume) not in _RECLAIMING:
            claim = await self._get_claim(key)  # the informer may lag a claim created just now
        if claim is not None and uid_of(claim) != ref.get("uid"):
            fresh = await self._get_claim(key)
            claim = fresh if fresh is not None and uid_of(fresh) == ref.get("uid") else None
        if claim is None:
            if _phase(volume) not in _RECLAIMING:
                volume = await self._update_volume_phase(volume, "Released")
            await self._reclaim(volume)
            return
        claimed = str((claim.get("spec") or {}).get("volumeName") or "")
        if not claimed:
            if not volumes.volume_mode_mismatch(claim, volume):
                self.queue.add(CLAIM + namespaced_key(claim))  # the claim's sync finishes the binding
            return
        if claimed == meta(volume).get("name"):
            await self._update_volume_phase(volume, "Bound")
            return
        # Bound to a claim that is bound elsewhere.
        annotations = _annotations(volume)
        policy = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy")
        if volumes.ANN_DYNAMICALLY_PROVISIONED in annotations and policy == "Delete":
            if _phase(volume) not in _RECLAIMING:
                volume = await self._update_volume_phase(volume, "Released")
            await self._reclaim(volume)
        else:
            await self._unbind_volume(volume)

    async def _get_claim(self, key: str) -> Obj | None:
        namespace, _, name = key.partition("/")
        try:
            claim: Obj = await self.client.get(resource_path("", "v1", "persistentvolumeclaims", namespace, name))
        except APIError as exc:
            if is_not_found(exc):
                return None
            raise
        return claim

    # -- writes ---------------------------------------------------------------------------------------------

    def _claim_path(self, claim: Obj, sub: str | None = None) -> str:
        md = meta(claim)
        return resource_path("", "v1", "persistentvolumeclaims", md.get("namespace") or "", md.get("name"), sub)

    def _volume_path(self, volume: Obj, sub: str | None = None) -> str:
        return resource_path("", "v1", "persistentvolumes", None, meta(volume).get("name"), sub)

    async def _bind(self, volume: Obj, claim: Obj) -> None:
        """bind: the volume first (claimRef, then phase Bound), then the claim (volumeName, then status Bound)."""
        volume = await self._bind_volume_to_claim(volume, claim)
        volume = await self._update_volume_phase(volume, "Bound")
        claim = await self._bind_claim_to_volume(claim, volume)
        await self._update_claim_status(claim, "Bound", volume)

    async def _bind_volume_to_claim(self, volume: Obj, claim: Obj) -> Obj:
        """GetBindVolumeToClaim + updateBindVolumeToClaim."""
        bound_already = volumes.volume_bound_to_claim(volume, claim)
        new = copy.deepcopy(volume)
        spec = new.setdefault("spec", {})
        ref = spec.get("claimRef") or {}
        md = meta(claim)
        dirty = False
        if (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (
            md.get("name"),
            md.get("namespace"),
            md.get("uid"),
        ):
            spec["claimRef"] = volumes.claim_reference(claim)
            dirty = True
        annotations = new.setdefault("metadata", {}).setdefault("annotations", {})
        if not bound_already and volumes.ANN_BOUND_BY_CONTROLLER not in annotations:
            annotations[volumes.ANN_BOUND_BY_CONTROLLER] = "yes"
            dirty = True
        if not dirty:
            return volume
        return self._volumes.put(await self.client.replace(self._volume_path(new), new))

    async def _bind_claim_to_volume(self, claim: Obj, volume: Obj) -> Obj:
        """bindClaimToVolume: volumeName (bound-by-controller when the controller chose it), bind-completed."""
        new = copy.deepcopy(claim)
        spec = new.setdefault("spec", {})
        annotations = new.setdefault("metadata", {}).setdefault("annotations", {})
        dirty = False
        name = meta(volume).get("name")
        if spec.get("volumeName") != name:
            spec["volumeName"] = name
            annotations.setdefault(volumes.ANN_BOUND_BY_CONTROLLER, "yes")
            dirty = True
        if volumes.ANN_BIND_COMPLETED not in annotations:
            annotations[volumes.ANN_BIND_COMPLETED] = "yes"
            dirty = True
        if not dirty:
            return claim
        return self._claims.put(await self.client.replace(self._claim_path(new), new))

    async def _update_claim_status(self, claim: Obj, phase: str, volume: Obj | None) -> Obj:
        """updateClaimStatus: the phase, and the volume's access modes and (when becoming bound) capacity."""
        new = copy.deepcopy(claim)
        status = new.setdefault("status", {})
        dirty = status.get("phase") != phase
        status["phase"] = phase
        if volume is None:
            for key in ("accessModes", "capacity"):
                if status.pop(key, None) is not None:
                    dirty = True
        else:
            vspec = volume.get("spec") or {}
            modes = vspec.get("accessModes")
            if status.get("accessModes") != modes:
                status["accessModes"] = modes
                dirty = True
            if _phase(claim) != phase:
                capacity = vspec.get("capacity") or {}
                if "storage" not in capacity:
                    raise ValueError(f"PersistentVolume {meta(volume).get('name')!r} is without a storage capacity")
                if status.get("capacity") != capacity:
                    status["capacity"] = dict(capacity)
                    dirty = True
        if not dirty:
            return claim
        updated = await self.client.replace(self._claim_path(new, "status"), new)
        log.debug("persistentvolume-binder: claim %s entered phase %s", namespaced_key(claim), phase)
        return self._claims.put(updated)

    async def _update_volume_phase(self, volume: Obj, phase: str, message: str = "") -> Obj:
        """updateVolumePhase."""
        if _phase(volume) == phase:
            return volume
        new = copy.deepcopy(volume)
        status = new.setdefault("status", {})
        status["phase"] = phase
        if message:
            status["message"] = message
        else:
            status.pop("message", None)
        updated = await self.client.replace(self._volume_path(new, "status"), new)
        log.debug("persistentvolume-binder: volume %s entered phase %s", meta(volume).get("name"), phase)
        return self._volumes.put(updated)

    async def _unbind_volume(self, volume: Obj) -> None:
        """unbindVolume: a controller-made binding is dropped, a user's pre-binding keeps its claim but no UID."""
        new = copy.deepcopy(volume)
        annotations = meta(new).get("annotations") or {}
        if volumes.ANN_BOUND_BY_CONTROLLER in annotations:
            new["spec"].pop("claimRef", None)
            annotations.pop(volumes.ANN_BOUND_BY_CONTROLLER, None)
            if not annotations:
                new["metadata"].pop("annotations", None)
        else:
            new["spec"]["claimRef"]["uid"] = ""
        updated = self._volumes.put(await self.client.replace(self._volume_path(new), new))
        await self._update_volume_phase(updated, "Available")

    async def _reclaim(self, volume: Obj) -> None:
        """reclaimVolume: Retain keeps it; Delete is the external deleter's for provisioned and CSI volumes;
        without in-tree plugins any other Delete or Recycle fails the volume."""
        spec = volume.get("spec") or {}
        policy = spec.get("persistentVolumeReclaimPolicy")
        if policy == "Retain":
            return
        if policy == "Delete":
            if volumes.ANN_DYNAMICALLY_PROVISIONED in _annotations(volume) or spec.get("csi"):
                return  # findDeletablePlugin: an external deleter is requested
            message = (
                f'error getting deleter volume plugin for volume "{meta(volume).get("name")}": '
                "no deletable volume plugin matched"
            )
        elif policy == "Recycle":
            message = "No recycler plugin found for the volume!"
        else:
            message = "Volume has unrecognized PersistentVolumeReclaimPolicy"
        await self._update_volume_phase(volume, "Failed", message)

    async def _assign_default_class(self, claim: Obj) -> bool:
        """assignDefaultStorageClass: a claim created before any default class existed gets it now."""
        if volumes.claim_has_class(claim):
            return False
        default = volumes.default_storage_class(self.classes.list())
        if default is None:
            return False
        new = copy.deepcopy(claim)
        new.setdefault("spec", {})["storageClassName"] = meta(default).get("name")
        self._claims.put(await self.client.replace(self._claim_path(new), new))
        return True

    async def _provision(self, claim: Obj, storage_class: Obj | None) -> None:
        """provisionClaim for an external provisioner: annotate the claim with the class's provisioner
        (setClaimProvisioner); an unknown class or an in-tree (kubernetes.io/) provisioner waits for the resync."""
        if storage_class is None:
            name = volumes.claim_class(claim)
            log.info("persistentvolume-binder: storageclass %r of claim %s not found", name, namespaced_key(claim))
            return
        provisioner = str(storage_class.get("provisioner") or "")
        if not provisioner or provisioner.startswith("kubernetes.io/"):
            return  # no in-tree provisioning plugins here
        if _annotations(claim).get(volumes.ANN_STORAGE_PROVISIONER) == provisioner:
            return
        new = copy.deepcopy(claim)
        annotations = new.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[volumes.ANN_BETA_STORAGE_PROVISIONER] = provisioner
        annotations[volumes.ANN_STORAGE_PROVISIONER] = provisioner
        self._claims.put(await self.client.replace(self._claim_path(new), new))


class HollowProvisioner(Controller):
    """The external-provisioner of the hollow CSI driver (see the module docstring)."""

    name = "hollow-provisioner"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        provisioner: str = volumes.HOLLOW_PROVISIONER,
        workers: int = 2,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.provisioner = provisioner
        self.claims = self.use("", "v1", "persistentvolumeclaims")
        self.volumes = self.use("", "v1", "persistentvolumes")
        self.classes = self.use("storage.k8s.io", "v1", "storageclasses")
        self.claims.add_handler(self._claim_event, lambda old, new: self._claim_event(new), None)
        self.volumes.add_handler(self._volume_event, lambda old, new: self._volume_event(new), None)

    def _claim_event(self, claim: Obj) -> None:
        if _annotations(claim).get(volumes.ANN_STORAGE_PROVISIONER) == self.provisioner:
            self.queue.add(CLAIM + namespaced_key(claim))

    def _volume_event(self, volume: Obj) -> None:
        if _annotations(volume).get(volumes.ANN_DYNAMICALLY_PROVISIONED) == self.provisioner:
            self.queue.add(VOLUME + namespaced_key(volume))

    async def sync(self, key: str) -> None:
        if key.startswith(CLAIM):
            claim = self.claims.get(key[len(CLAIM) :])
            if claim is not None and self._should_provision(claim):
                await self._provision(claim)
        elif key.startswith(VOLUME):
            volume = self.volumes.get(key[len(VOLUME) :])
            if volume is not None and self._should_delete(volume):
                await self._delete(volume)

    def _should_provision(self, claim: Obj) -> bool:
        """shouldProvision: handed to this provisioner, not bound to a volume yet, not being deleted."""
        if is_deleting(claim) or (claim.get("spec") or {}).get("volumeName"):
            return False
        return _annotations(claim).get(volumes.ANN_STORAGE_PROVISIONER) == self.provisioner

    def _should_delete(self, volume: Obj) -> bool:
        """shouldDelete: a volume it provisioned, Released, with reclaim policy Delete."""
        return (
            _phase(volume) == "Released"
            and (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete"
            and _annotations(volume).get(volumes.ANN_DYNAMICALLY_PROVISIONED) == self.provisioner
        )

    def volume_for(self, claim: Obj, storage_class: Obj) -> Obj:
        """The PersistentVolume provisioned for a claim: `pvc-<claim uid>`, pre-bound to it."""
        spec = claim.get("spec") or {}
        requested = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        name = f"pvc-{uid_of(claim)}"
        pv_spec: dict[str, Any] = {
            "capacity": {"storage": canonical_quantity(str(requested))},
            "accessModes": list(spec.get("accessModes") or ()),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "storageClassName": volumes.claim_class(claim),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "claimRef": volumes.claim_reference(claim),
            "csi": {"driver": self.provisioner, "volumeHandle": name, "fsType": "ext4"},
        }
        if storage_class.get("mountOptions"):
            pv_spec["mountOptions"] = list(storage_class["mountOptions"])
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {volumes.ANN_DYNAMICALLY_PROVISIONED: self.provisioner}},
            "spec": pv_spec,
        }

    async def _provision(self, claim: Obj) -> None:
        storage_class = self.classes.get(volumes.claim_class(claim))
        if storage_class is None or storage_class.get("provisioner") != self.provisioner:
            return  # the class is gone or names another provisioner
        if (claim.get("spec") or {}).get("selector"):
            log.info("hollow-provisioner: claim %s: claim Selector is not supported", namespaced_key(claim))
            return
        mode = volumes.binding_mode(storage_class)
        if mode == volumes.BINDING_WAIT_FOR_FIRST_CONSUMER and volumes.ANN_SELECTED_NODE not in _annotations(claim):
            return
        body = self.volume_for(claim, storage_class)
        if self.volumes.get(body["metadata"]["name"]) is not None:
            return
        try:
            await self.client.create(resource_path("", "v1", "persistentvolumes"), body)
        except APIError as exc:
            if not is_already_exists(exc):
                raise
        log.debug("hollow-provisioner: provisioned %s for claim %s", body["metadata"]["name"], namespaced_key(claim))

    async def _delete(self, volume: Obj) -> None:
        """The driver's DeleteVolume (nothing to free on a hollow driver), then the PV object, by UID."""
        try:
            await self.client.delete(
                resource_path("", "v1", "persistentvolumes", None, meta(volume).get("name")),
                preconditions={"uid": uid_of(volume)},
            )
        except APIError as exc:
            if not is_not_found(exc):
                raise
