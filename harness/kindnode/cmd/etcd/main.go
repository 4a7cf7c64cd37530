// Command etcd is etcd's own server entry point, built from the go.etcd.io/etcd
// server module so that the node image needs no prebuilt binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
