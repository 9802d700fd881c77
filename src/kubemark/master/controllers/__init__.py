"""kube-controller-manager for the embedded master: work queues, shared informers and the controllers.

Controllers talk to the API server only through `kubemark.client`, so each can be pointed at a real cluster.
"""
