//go:build tools

// Package tools keeps the upstream commands' libraries in go.mod so that
// `go build k8s.io/kubernetes/cmd/...` and `sigs.k8s.io/kwok/cmd/kwok` resolve.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "sigs.k8s.io/kwok/pkg/kwok/cmd"
)
