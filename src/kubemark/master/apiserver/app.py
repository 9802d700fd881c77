"""The aiohttp application of the embedded kube-apiserver: filters, discovery, resources, 404s.

Routes, in order: caller's extra routes (e.g. /metrics), SelfSubjectReview, discovery (/version, /api, /apis, health), the
resource catch-alls for /api/... and /apis/..., then a JSON 404 Status for every other path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.handlers import (
    DEFAULT_USER,
    MAX_REQUEST_BODY_BYTES,
    ObjectAuthorizer,
    RBACWriteAuthorizer,
    ResourceHandlers,
    path_not_found,
    status_response,
)
from kubemark.master.apiserver.object_store import ResourceStore
from kubemark.master.apiserver.request_info import REQUEST_INFO, REQUEST_USER, parse_request_info
from kubemark.master.apiserver.self_review import AccessCheck, self_review_routes
from kubemark.master.apiserver.watch import WatchStreams

log = logging.getLogger(__name__)


WATCH_STREAMS = web.AppKey("kubemark_watch_streams", WatchStreams)
RESOURCE_HANDLERS = web.AppKey("kubemark_resource_handlers", ResourceHandlers)


@web.middleware
async def default_filters(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stand-in for the security filters: request info, an all-powerful user, StatusError -> Status."""
    request[REQUEST_INFO] = parse_request_info(request.method, request.path, request.query)  # type: ignore[arg-type]
    request[REQUEST_USER] = DEFAULT_USER
    try:
        return await handler(request)
    except StatusError as err:
        return status_response(err)


def create_app(
    stores: Iterable[ResourceStore],
    *,
    middlewares: Sequence[Middleware] = (),
    extra_routes: Sequence[web.RouteDef] = (),
    discovery: Sequence[web.RouteDef] | None = None,
    object_authorizer: ObjectAuthorizer | None = None,
    rbac_write_authorizer: RBACWriteAuthorizer | None = None,
    access_check: AccessCheck | None = None,
) -> web.Application:
    """The API server app. `middlewares` defaults to `default_filters`; `discovery` defaults to the discovery
    and OpenAPI routes built from the stores' resource types."""
    store_list = list(stores)
    app = web.Application(
        middlewares=list(middlewares) if middlewares else [default_filters],
        # aiohttp enforces this while reading; one byte over lets handlers report upstream's 413.
        client_max_size=MAX_REQUEST_BODY_BYTES + 1,
    )
    streams = WatchStreams()
    handlers = ResourceHandlers(store_list, streams, object_authorizer, rbac_write_authorizer)
    app[WATCH_STREAMS] = streams
    app[RESOURCE_HANDLERS] = handlers

    async def end_watches(_: web.Application) -> None:
        streams.close_all()

    app.on_shutdown.append(end_watches)
    app.router.add_routes(list(extra_routes))
    # Virtual resources without storage (SelfSubjectReview), ahead of the resource catch-alls.
    app.router.add_routes(self_review_routes(access_check))
    # Resource paths first (no discovery route has a segment below /apis/{group}/{version}/ or /api/{version}/):
    # aiohttp tries the routes of a path prefix in order, so this spares every resource request the regex
    # matches of the discovery routes. Behaviour is unchanged; the catch-alls below still take the rest.
    app.router.add_route("*", "/api/{version}/{rest:.+}", handlers.handle)
    app.router.add_route("*", "/apis/{group}/{version}/{rest:.+}", handlers.handle)
    if discovery is None:
        from kubemark.master.apiserver.discovery import discovery_routes
        from kubemark.master.apiserver.openapi import openapi_routes

        served = [s.rt for s in store_list]
        discovery = [*discovery_routes(served), *openapi_routes(served)]
    app.router.add_routes(list(discovery))
    app.router.add_route("*", "/api/{tail:.*}", handlers.handle)
    app.router.add_route("*", "/apis/{tail:.*}", handlers.handle)

    async def not_found(request: web.Request) -> web.StreamResponse:
        return status_response(path_not_found())

    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
