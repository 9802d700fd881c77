"""`kubemark dashboard`: a read-only web page over directories of run directories (kubemark's and
clusterloader2's): a runs table, one metric's trend over runs, and two runs compared with `kubemark compare`'s
rule. `create_app` builds the aiohttp application, `DashboardServer` serves it.
"""

from kubemark.report.dashboard.app import DashboardServer, create_app

__all__ = ["DashboardServer", "create_app"]
