"""A real local control plane (etcd, kube-apiserver, controllers, kwok) plus moto, for tests and demos."""
