module go.etcd.io/etcd/server/v3

go 1.24

toolchain go1.24.9

require (
	github.com/coreos/go-semver v0.3.1
	go.etcd.io/etcd/api/v3 v3.6.5
	go.etcd.io/etcd/client/pkg/v3 v3.6.5 // indirect
	go.etcd.io/etcd/client/v3 v3.6.5
	go.etcd.io/etcd/pkg/v3 v3.6.5
)

replace (
	go.etcd.io/etcd/api/v3 => ../api
	go.etcd.io/etcd/client/pkg/v3 => ../client/pkg
	go.etcd.io/etcd/client/v3 => ../client/v3
	go.etcd.io/etcd/pkg/v3 => ./../pkg
)

replace github.com/example/forked v1.0.0 => github.com/example/fork v1.0.1

// Bad imports are sometimes causing attempts to pull that code.
// This makes the error more explicit.
replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY
