"""Kubernetes adapter: reads Services, EndpointSlices and Nodes, writes status and events."""
