"""Service-account tokens: kube-apiserver's TokenRequest API and the JWT authenticator that accepts its tokens.

`POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token` takes an authentication.k8s.io/v1 TokenRequest
(spec.audiences, spec.expirationSeconds, spec.boundObjectRef to a Pod, Secret or Node) and answers with
status.token, an RS256 JWT signed with the master's service-account key, and status.expirationTimestamp.
The claims are upstream's (pkg/serviceaccount/claims.go): iss, sub = system:serviceaccount:<ns>:<name>, aud,
exp, iat, nbf, jti and the private `kubernetes.io` claim {namespace, serviceaccount, pod | secret | node}.

`ServiceAccountTokens.authenticate` is the bearer-token authenticator: signature, issuer, exp/nbf (60 s
leeway, as go-jose), an audience shared with the API server's, then the service account (and the bound pod,
secret or node) must still exist with the UID the token names. Those lookups read this API server's watch
caches, never etcd; signature checks are remembered per token, so a repeated token costs a few dict lookups.
A token request waits for the caches to hold the objects it read, so its token works at once.

Not implemented: legacy Secret-based tokens, several signing keys (rotation), OIDC discovery documents,
TokenReview, attestations and webhook-bound tokens.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kubemark import codec
from kubemark.kube import meta
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.errors import Cause, StatusError
from kubemark.master.apiserver.request_info import RequestInfo, UserInfo
from kubemark.master.apiserver.strategy import Obj, SubresourceRequest

log = logging.getLogger(__name__)

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
GROUP = "authentication.k8s.io"
API_VERSION = f"{GROUP}/v1"
KIND = "TokenRequest"
MIN_EXPIRATION_SECONDS = 10 * 60  # pkg/apis/authentication/validation: MinTokenAgeSec
MAX_EXPIRATION_SECONDS = 1 << 32
DEFAULT_EXPIRATION_SECONDS = 60 * 60  # v1 defaulting of spec.expirationSeconds
# The kubelet asks this for projected tokens; with --service-account-extend-token-expiration (on by default)
# such a pod-bound token lives a year and only warns after the asked duration (claims.go).
WARN_ONLY_EXPIRATION_SECONDS = 60 * 60 + 7
EXTENDED_EXPIRATION_SECONDS = 24 * 365 * 60 * 60
LEEWAY_SECONDS = 60  # go-jose jwt.DefaultLeeway: exp, nbf, iat and "deleted before" checks
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
AUTHENTICATED_GROUP = "system:authenticated"
# user.Info extra keys of k8s.io/apiserver/pkg/authentication/serviceaccount.
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"
_VERIFIED_CACHE_SIZE = 16384
_FRESHNESS_TIMEOUT = 3.0


def username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """Upstream's keyIDFromPublicKey: unpadded base64url of SHA-256 over the PKIX DER of the public key."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64encode(hashlib.sha256(der).digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or "=" in text:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_part(text: str) -> Any:
    return codec.loads(_b64decode(text))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class _Ref:
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class _Claims:
    """The parts of a signature-checked token the per-request checks need."""

    audiences: tuple[str, ...]
    expiry: float
    not_before: float | None
    issued_at: float | None
    namespace: str
    service_account: _Ref
    pod: _Ref | None
    secret: _Ref | None
    node: _Ref | None
    jti: str


class TokenSigner:
    """RS256 compact JWS with upstream's header ({"alg": "RS256", "kid": <key id>})."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)
        self._header = _b64encode(codec.dumps({"alg": "RS256", "kid": self.key_id}))

    def sign(self, claims: Obj) -> str:
        signing_input = f"{self._header}.{_b64encode(codec.dumps(claims))}"
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64encode(signature)}"

    def verified_payload(self, token: str, issuers: Iterable[str]) -> Obj | None:
        """The payload of a token this key signed for one of `issuers`; None for anything else."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header, payload = _json_part(parts[0]), _json_part(parts[1])
            signature = _b64decode(parts[2])
        except (ValueError, binascii.Error, codec.JSONDecodeError):
            return None
        if not isinstance(payload, dict) or payload.get("iss") not in set(issuers):
            return None  # not a service-account token of this server (upstream: hasCorrectIssuer)
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return None
        kid = header.get("kid")
        if kid not in (None, "", self.key_id):
            return None
        try:
            self.public_key.verify(
                signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, UnicodeEncodeError):
            return None
        return payload


def _ref(value: Any) -> _Ref | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("a reference claim is not an object")
    name, uid = value.get("name", ""), value.get("uid", "")
    if not isinstance(name, str) or not isinstance(uid, str):
        raise ValueError("a reference claim has a non-string name or uid")
    return _Ref(name, uid)


def _parse_claims(payload: Obj) -> _Claims:
    """Claims of a verified payload, type-checked; ValueError if they are not a service-account token's."""
    aud = payload.get("aud")
    if isinstance(aud, str):
        audiences: tuple[str, ...] = (aud,)
    elif aud is None:
        audiences = ()
    elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        audiences = tuple(aud)
    else:
        raise ValueError("aud is neither a string nor a list of strings")
    times: dict[str, float | None] = {}
    for name in ("exp", "nbf", "iat"):
        value = payload.get(name)
        if value is not None and not _is_number(value):
            raise ValueError(f"{name} is not a number")
        times[name] = value
    expiry = times["exp"]
    if expiry is None:
        raise ValueError("exp is missing")
    private = payload.get("kubernetes.io")
    if not isinstance(private, dict):
        raise ValueError("the kubernetes.io claim is missing")
    namespace = private.get("namespace")
    account = _ref(private.get("serviceaccount"))
    if not isinstance(namespace, str) or not namespace or account is None or not account.name:
        raise ValueError("the kubernetes.io claim names no service account")
    jti = payload.get("jti", "")
    return _Claims(
        audiences=audiences,
        expiry=float(expiry),
        not_before=times["nbf"],
        issued_at=times["iat"],
        namespace=namespace,
        service_account=account,
        pod=_ref(private.get("pod")),
        secret=_ref(private.get("secret")),
        node=_ref(private.get("node")),
        jti=jti if isinstance(jti, str) else "",
    )


def _deleted_before(obj: Obj, instant: float) -> bool:
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    try:
        return meta.parse_time(stamp) < instant
    except ValueError:
        return False


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _bad_body(path: str, value: Any, go_type: str) -> StatusError:
    kind = {str: "string", bool: "bool", list: "array", dict: "object"}.get(type(value), "number")
    return errors.bad_request(
        f'{KIND} in version "v1" cannot be handled as a {KIND}: json: cannot unmarshal {kind} into Go struct '
        f"field {path} of type {go_type}"
    )


def _invalid(name: str, causes: list[Cause]) -> StatusError:
    """422 worded as NewInvalid(TokenRequest.authentication.k8s.io, name, errs)."""
    joined = ", ".join(f"{c.field}: {c.message}" for c in causes)
    details: dict[str, Any] = {"group": GROUP, "kind": KIND, "causes": [c.to_dict() for c in causes]}
    if name:
        details["name"] = name
    return StatusError(422, "Invalid", f'{KIND}.{GROUP} "{name}" is invalid: {joined}', details)


def _field_invalid(path: str, value: Any, detail: str) -> Cause:
    shown = codec.dumps(value).decode() if isinstance(value, str) else str(value)
    return Cause(path, f"Invalid value: {shown}: {detail}", "FieldValueInvalid")


class ServiceAccountTokens:
    """The token issuer (TokenRequest) and the service-account token authenticator of one API server.

    Build it with the master's signing key, give `authenticate` to the Authenticator, and `attach` it to the
    API server's stores once they exist (that installs the serviceaccounts/token subresource). Until then, and
    on an API server it is never attached to, no service-account token authenticates.
    """

    def __init__(
        self,
        signing_key: rsa.RSAPrivateKey,
        *,
        issuer: str = DEFAULT_ISSUER,
        api_audiences: Sequence[str] = (),
        max_expiration_seconds: int = 0,
        extend_expiration: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = TokenSigner(signing_key)
        self.issuer = issuer
        # kube-apiserver's --api-audiences default to the issuer.
        self.api_audiences: tuple[str, ...] = tuple(api_audiences) or (issuer,)
        self.max_expiration_seconds = max_expiration_seconds
        self.extend_expiration = extend_expiration
        self.clock = clock
        self._stores: dict[tuple[str, str], Any] = {}
        self._object_authorizer: Callable[[UserInfo, RequestInfo, Obj | None], str | None] | None = None
        self._verified: OrderedDict[str, _Claims] = OrderedDict()

    # --- wiring --------------------------------------------------------------------------------------------

    def attach(
        self,
        stores: Iterable[Any],
        *,
        object_authorizer: Callable[[UserInfo, RequestInfo, Obj | None], str | None] | None = None,
    ) -> None:
        """Read objects from these ResourceStores (and their watch caches); serve serviceaccounts/token.

        `object_authorizer` (Authorizer.authorize_object) gets each node's TokenRequest body, as NodeRestriction
        admission does upstream: a node may only ask for tokens bound to its own pods.
        """
        self._stores = {(store.rt.group, store.rt.plural): store for store in stores}
        self._object_authorizer = object_authorizer
        accounts = self._stores.get(("", "serviceaccounts"))
        if accounts is not None:
            accounts.strategy.subresources["token"] = self.create_token

    def _cached(self, plural: str, namespace: str, name: str) -> Obj | None:
        store = self._stores.get(("", plural))
        if store is None or store.cache is None or not name:
            return None
        cached = store.cache.get(store.key(namespace, name))
        return cached.obj if cached is not None else None

    async def _get_fresh(self, plural: str, namespace: str, name: str) -> Obj:
        """A consistent read (404 when missing), then a wait until the watch cache holds that revision too, so
        the token about to be issued authenticates from the cache at once."""
        store = self._stores.get(("", plural))
        if store is None:
            raise errors.not_found("", plural, name)
        obj: Obj = await store.get(namespace, name)
        revision = (obj.get("metadata") or {}).get("resourceVersion")
        if store.cache is not None and isinstance(revision, str) and revision.isdigit():
            with contextlib.suppress(Exception):  # a lagging cache only delays the token's first use
                await store.cache.wait_until_fresh(int(revision), _FRESHNESS_TIMEOUT)
        return obj

    # --- authentication ------------------------------------------------------------------------------------

    def authenticate(self, token: str) -> UserInfo | None:
        """The service account a bearer token stands for, or None (not ours, or no longer valid)."""
        user, reason = self.validate(token)
        if user is None and reason:
            log.debug("service-account token rejected: %s", reason)
        return user

    def validate(self, token: str) -> tuple[UserInfo | None, str]:
        """(user, "") for a valid token; (None, why) otherwise ("" when the token is not a JWT of ours)."""
        claims = self._verified.get(token)
        if claims is None:
            payload = self.signer.verified_payload(token, (self.issuer,))
            if payload is None:
                return None, ""
            try:
                claims = _parse_claims(payload)
            except ValueError as exc:
                return None, f"token could not be validated: {exc}"
            self._verified[token] = claims
            if len(self._verified) > _VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        now = self.clock()
        if now > claims.expiry + LEEWAY_SECONDS:
            self._verified.pop(token, None)
            return None, "service account token has expired"
        if claims.not_before is not None and now + LEEWAY_SECONDS < claims.not_before:
            return None, "service account token is not valid yet"
        if claims.issued_at is not None and now + LEEWAY_SECONDS < claims.issued_at:
            return None, "service account token was issued in the future"
        audiences = claims.audiences or self.api_audiences
        if not set(audiences) & set(self.api_audiences):
            return (
                None,
                f"token audiences {list(audiences)} is invalid for the target audiences {list(self.api_audiences)}",
            )
        return self._bound_checks(claims, now)

    def _bound_checks(self, claims: _Claims, now: float) -> tuple[UserInfo | None, str]:
        """Upstream's validator.Validate: the objects the token names still exist with the same UIDs."""
        namespace, account = claims.namespace, claims.service_account
        deleted_before = now - LEEWAY_SECONDS
        sa = self._cached("serviceaccounts", namespace, account.name)
        if sa is None:
            return None, f'serviceaccounts "{account.name}" not found'
        if _deleted_before(sa, deleted_before):
            return None, f"ServiceAccount {namespace}/{account.name} has been deleted"
        if _uid(sa) != account.uid:
            return None, f"ServiceAccount UID ({_uid(sa)}) does not match claim ({account.uid})"
        for plural, ref in (("secrets", claims.secret), ("pods", claims.pod)):
            if ref is None:
                continue
            obj = self._cached(plural, namespace, ref.name)
            if obj is None or _deleted_before(obj, deleted_before):
                return None, "Token has been invalidated"
            if _uid(obj) != ref.uid:
                return None, f"{plural[:-1].capitalize()} UID ({_uid(obj)}) does not match claim ({ref.uid})"
        extra: list[tuple[str, tuple[str, ...]]] = []
        if claims.pod is not None and claims.pod.name and claims.pod.uid:
            extra += [(POD_NAME_KEY, (claims.pod.name,)), (POD_UID_KEY, (claims.pod.uid,))]
        if claims.jti:
            extra.append((CREDENTIAL_ID_KEY, (f"JTI={claims.jti}",)))
        if claims.node is not None:
            if claims.pod is None:
                # Bound to the Node itself: it must still exist. A pod-bound token's node is informational.
                node = self._cached("nodes", "", claims.node.name)
                if node is None:
                    return None, "Token has been invalidated"
                if _uid(node) != claims.node.uid:
                    return None, f"Node UID ({_uid(node)}) does not match claim ({claims.node.uid})"
            if claims.node.name:
                extra.append((NODE_NAME_KEY, (claims.node.name,)))
                if claims.node.uid:
                    extra.append((NODE_UID_KEY, (claims.node.uid,)))
        groups = (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}", AUTHENTICATED_GROUP)
        return UserInfo(username(namespace, account.name), groups, account.uid, tuple(sorted(extra))), ""

    # --- TokenRequest --------------------------------------------------------------------------------------

    async def create_token(self, req: SubresourceRequest) -> Obj:
        """POST serviceaccounts/{name}/token (pkg/registry/core/serviceaccount/storage/token.go)."""
        if req.verb != "create":
            raise errors.method_not_allowed()
        body = req.body
        if body is None:
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {KIND}): Object 'Kind' is missing in ''"
            )
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version and api_version != API_VERSION:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({API_VERSION})"
            )
        if kind and kind != KIND:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({KIND})")
        metadata = body.get("metadata") or {}
        spec = body.get("spec") or {}
        if not isinstance(metadata, dict):
            raise _bad_body("TokenRequest.metadata", metadata, "v1.ObjectMeta")
        if not isinstance(spec, dict):
            raise _bad_body("TokenRequest.spec", spec, "v1.TokenRequestSpec")
        audiences = spec.get("audiences")
        if audiences is not None and (
            not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences)
        ):
            raise _bad_body("TokenRequestSpec.spec.audiences", audiences, "[]string")
        expiration = spec.get("expirationSeconds")
        if expiration is None:
            expiration = DEFAULT_EXPIRATION_SECONDS
        elif not isinstance(expiration, int) or isinstance(expiration, bool):
            raise _bad_body("TokenRequestSpec.spec.expirationSeconds", expiration, "int64")
        ref = spec.get("boundObjectRef")
        if ref is not None and (not isinstance(ref, dict) or not all(isinstance(v, str) for v in ref.values())):
            raise _bad_body("TokenRequestSpec.spec.boundObjectRef", ref, "v1.BoundObjectReference")

        namespace, name = req.namespace, req.name
        if self._object_authorizer is not None and req.user.node_name is not None:
            path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
            info = RequestInfo(True, path, "create", "api", "", "v1", namespace, "serviceaccounts", "token", name)
            reason = self._object_authorizer(req.user, info, {**body, "kind": KIND})
            if reason:
                raise errors.admission_forbidden("", "serviceaccounts", name, reason)
        if metadata.get("name") and metadata["name"] != name:
            cause = _field_invalid(
                "metadata.name", metadata["name"], "must match the service account name if specified"
            )
            raise _invalid(name, [cause])
        if metadata.get("namespace") and metadata["namespace"] != namespace:
            cause = _field_invalid(
                "metadata.namespace", metadata["namespace"], "must match the service account namespace if specified"
            )
            raise _invalid(name, [cause])
        account = await self._get_fresh("serviceaccounts", namespace, name)
        account_uid = _uid(account)
        if metadata.get("uid") and metadata["uid"] != account_uid:
            raise errors.conflict(
                GROUP,
                KIND,
                name,
                f"the UID in the token request ({metadata['uid']}) does not match the UID of the service account "
                f"({account_uid})",
            )
        audiences = list(audiences) if audiences else list(self.api_audiences)
        causes = []
        if expiration < MIN_EXPIRATION_SECONDS:
            causes.append(
                _field_invalid("spec.expirationSeconds", expiration, "may not specify a duration less than 10 minutes")
            )
        if expiration > MAX_EXPIRATION_SECONDS:
            causes.append(
                _field_invalid(
                    "spec.expirationSeconds", expiration, "may not specify a duration larger than 2^32 seconds"
                )
            )
        if causes:
            raise _invalid("", causes)

        private: Obj = {"namespace": namespace, "serviceaccount": {"name": name, "uid": account_uid}}
        pod_bound = False
        if ref is not None:
            pod_bound = await self._bind(namespace, name, ref, private)
        if self.max_expiration_seconds > 0 and expiration > self.max_expiration_seconds:
            expiration = self.max_expiration_seconds
        lifetime, warn_after = expiration, 0
        if (
            self.extend_expiration
            and pod_bound
            and expiration == WARN_ONLY_EXPIRATION_SECONDS
            and set(audiences) <= set(self.api_audiences)
        ):
            warn_after, lifetime = expiration, EXTENDED_EXPIRATION_SECONDS
        now = int(self.clock())
        if warn_after:
            private["warnafter"] = now + warn_after
        claims = {
            "aud": audiences,
            "exp": now + lifetime,
            "iat": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": now,
            "sub": username(namespace, name),
        }
        out_meta = dict(metadata)
        out_meta.update(
            {"name": name, "namespace": namespace, "uid": account_uid, "creationTimestamp": meta.format_rfc3339(now)}
        )
        out_spec: Obj = {"audiences": audiences, "expirationSeconds": expiration}
        if ref is not None:
            out_spec["boundObjectRef"] = ref
        return {
            "kind": KIND,
            "apiVersion": API_VERSION,
            "metadata": out_meta,
            "spec": out_spec,
            "status": {"token": self.signer.sign(claims), "expirationTimestamp": meta.format_rfc3339(now + expiration)},
        }

    async def _bind(self, namespace: str, account: str, ref: Obj, private: Obj) -> bool:
        """Check spec.boundObjectRef and add its claims; True when the token is bound to a pod."""
        api_version, kind, name = ref.get("apiVersion", ""), ref.get("kind", ""), ref.get("name", "")
        group, _, version = api_version.rpartition("/")
        if group or kind not in ("Pod", "Secret", "Node"):
            raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
        if kind == "Pod":
            pod = await self._get_fresh("pods", namespace, name)
            running_as = (pod.get("spec") or {}).get("serviceAccountName") or ""
            if running_as != account:
                raise errors.bad_request(
                    f'cannot bind token for serviceaccount "{account}" to pod running with different serviceaccount name.'
                )
            uid = _uid(pod)
            private["pod"] = {"name": name, "uid": uid}
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            if node_name:
                node = self._cached("nodes", "", node_name)
                if node is None:
                    with contextlib.suppress(StatusError):
                        node = await self._get_fresh("nodes", "", node_name)
                # A missing Node still leaves its name in the claims (upstream does the same).
                private["node"] = {"name": node_name, **({"uid": _uid(node)} if node is not None else {})}
        elif kind == "Secret":
            uid = _uid(await self._get_fresh("secrets", namespace, name))
            private["secret"] = {"name": name, "uid": uid}
        else:
            uid = _uid(await self._get_fresh("nodes", "", name))
            private["node"] = {"name": name, "uid": uid}
        if ref.get("uid") and ref["uid"] != uid:
            raise errors.conflict(
                "",
                kind,
                name,
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. The object "
                "might have been deleted and then recreated",
            )
        return kind == "Pod"
