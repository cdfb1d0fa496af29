"""Template clusters shared by every replica through Redis (``state: redis://...``).

``TemplateClusters`` maps exact templates to near-duplicate clusters in one process. With the rule state
in Redis, a campaign's templates arrive at every replica, and each process alone would start its own
clusters with its own ids (the id of a cluster is the template that started it): ``signals.template_cluster``
would differ per replica, and so would every window keyed by it. ``SharedTemplateClusters`` keeps the
request path unchanged (``cluster_of`` is one dict read of what this process knows) and moves the search
for a template this process has not mapped yet to Redis (``lua/clusters.lua``: the same banded-LSH search,
earliest cluster within ``max_distance`` bits, over band lists shared by all replicas). That call is made
after the request, in the background, as the local search is; its answer is cached locally, so the next
request with that template reads the fleet-wide cluster id.

Differences from one process, on purpose: the LSH lists and the template map expire after ``ttl`` without
use (instead of the local LRU caps); joining a cluster refreshes it only in the band lists the new template
shares with it. When Redis fails (timeout, breaker open) a template is clustered locally, as without Redis,
and counted in ``local_fallbacks``; calls in flight are capped (``max_pending``), past that too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from proxy.policy.clusters import BUCKET_MAX, Cluster, TemplateClusters, simhash
from proxy.policy.store import SEP
from proxy.state.redis import eval_script, load_script
from proxy.tasks import spawn

if TYPE_CHECKING:
    from proxy.policy.store_faults import FaultTolerantRuleStore

log = logging.getLogger("distillguard.rules.clusters")
DAY = 86_400.0


class SharedTemplateClusters(TemplateClusters):
    """``TemplateClusters`` whose new templates are clustered in Redis (see the module docstring)."""

    def __init__(
        self, store: FaultTolerantRuleStore, *, ttl: float = DAY, max_pending: int = 256, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.store = store
        self.client = store.primary.client
        self.prefix = store.primary.prefix
        self.ttl_ms = str(int(ttl * 1000))
        self.max_pending = max_pending
        self.script = load_script("clusters.lua")
        self.sha = hashlib.sha1(self.script.encode()).hexdigest()
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.shared_calls = 0
        self.local_fallbacks = 0

    def observe(self, template: str, skeleton: bytes) -> str:
        """After the request. A mapped template: as locally. A new one: its SimHash now, the cluster
        search in Redis in the background; until it answers, the template reads as its own cluster."""
        if template in self.exact or template in self.pending:
            return super().observe(template, skeleton) if template in self.exact else template
        if len(self.pending) >= self.max_pending:
            self.local_fallbacks += 1
            return super().observe(template, skeleton)
        self.pending[template] = spawn(self._share(template, skeleton), "template-cluster")
        return template

    def keys(self, template: str, h: int) -> list[str]:
        p = self.prefix
        keys = [p + "tc" + SEP + template]
        keys += [p + "tb" + SEP + str(i) + SEP + str((h >> shift) & mask) for i, (shift, mask) in enumerate(self._cuts)]
        keys.append(p + "tseq")
        return keys

    async def _share(self, template: str, skeleton: bytes) -> None:
        try:
            c0 = time.thread_time()
            h = simhash(skeleton)
            self.cpu_seconds += time.thread_time() - c0
            keys = self.keys(template, h)
            args = (str(h >> 32), str(h & 0xFFFFFFFF), str(self.max_distance), str(BUCKET_MAX), self.ttl_ms, template)
            self.shared_calls += 1
            ok, res = await self.store._call(lambda: eval_script(self.client, self.sha, self.script, keys, args))
            if not ok:
                self.local_fallbacks += 1
                super().observe(template, skeleton)
                return
            out = res[0]
            cid = out[0].decode() if isinstance(out[0], bytes) else str(out[0])
            if out[2]:  # the cluster's own SimHash (the local tables index it for the fallback search)
                h = (int(out[2]) << 32) | int(out[3])
            self._adopt(template, cid, h, bool(out[1]))
        except Exception:
            log.exception("shared template clustering failed")
        finally:
            self.pending.pop(template, None)

    def _adopt(self, template: str, cid: str, h: int, new: bool) -> None:
        """Map ``template`` to the fleet's cluster ``cid`` in the local tables (LRU caps as locally)."""
        self.observed += 1
        c = self.clusters.get(cid)
        if c is None:
            self._seq += 1
            c = Cluster(cid, h, self._seq)
            self.clusters[cid] = c
            if new:
                self.new_clusters += 1
            while len(self.clusters) > self.max_clusters:
                _, old = self.clusters.popitem(last=False)
                self._unlist(old)
            self._list_first(c)
        else:
            self.clusters.move_to_end(cid)
        c.members += 1
        self.exact[template] = c
        if len(self.exact) > self.max_templates:
            self.exact.popitem(last=False)

    async def drain(self) -> None:
        """Wait for the searches in flight (tests, shutdown)."""
        while self.pending:
            await asyncio.gather(*list(self.pending.values()), return_exceptions=True)
